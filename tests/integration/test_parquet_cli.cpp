// `eval` and the trainers on MiniMind-V-layout parquet files (tests/fixtures/parquet/, written by
// pyarrow) against the same records as JSONL plus image files: the same per-sample losses, the same
// training losses, resume at the exact sample, two ranks (each reading its own rows) as one
// process, and bad rows named by row.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "mpi_util.h"
#include "data/parquet_source.h"

namespace minivlm {
namespace {

using testing::chatml_tokenizer;
using testing::fresh_dir;
using ::testing::HasSubstr;
using testing::kBin;
using testing::kSource;
using testing::losses;
using testing::mpirun;
using testing::read_file;
using testing::run;

const std::string kFixtures = kSource + "/tests/fixtures/parquet/";

#define SKIP_WITHOUT_PARQUET() \
  if (!parquet_supported()) GTEST_SKIP() << "built without parquet (no pyarrow)"

const std::string& model() {
  static const std::string dir = [] {
    const std::string d = fresh_dir("parquet_model") + "/model";
    const auto r = run(kBin + "/minivlm init-model --config " + kSource +
                       "/tests/fixtures/test-model.json --tokenizer " + chatml_tokenizer() +
                       " --out " + d + " --seed 11");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return d;
  }();
  return dir;
}

std::vector<nlohmann::json> lines_of(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(ParquetCli, EvalGivesTheSameLossesAsTheJsonlTwin) {
  SKIP_WITHOUT_PARQUET();
  const std::string d = fresh_dir("parquet_eval");
  const std::vector<std::pair<std::string, std::string>> twins = {
      {"list_zstd_rg5_v2.parquet", "list.jsonl"}, {"single_snappy_1rg.parquet", "single.jsonl"}};
  for (const auto& [parquet, jsonl] : twins) {
    auto r = run(kBin + "/eval --model " + model() + " --data " + kFixtures + jsonl + " --images " +
                 kFixtures + "images --out " + d + "/jsonl --batch-size 5");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // No --images: the rows carry their images.
    r = run(kBin + "/eval --model " + model() + " --data " + kFixtures + parquet + " --out " + d +
            "/parquet --batch-size 5");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto want = lines_of(d + "/jsonl/predictions.jsonl");
    const auto got = lines_of(d + "/parquet/predictions.jsonl");
    ASSERT_EQ(want.size(), 24u);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]) << parquet << " row " << i;
    EXPECT_EQ(nlohmann::json::parse(read_file(d + "/parquet/metrics.json")),
              nlohmann::json::parse(read_file(d + "/jsonl/metrics.json")));
  }
}

TEST(ParquetCli, EvalNamesTheBadRows) {
  SKIP_WITHOUT_PARQUET();
  const std::string d = fresh_dir("parquet_eval_bad");
  const auto r =
      run(kBin + "/eval --model " + model() + " --data " + kFixtures + "bad.parquet --out " + d);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (int row : {1, 3, 5, 7, 9, 11, 13})
    EXPECT_THAT(r.output, HasSubstr("warning: " + kFixtures + "bad.parquet:row " +
                                    std::to_string(row) + ": skipped sample: "));
  const auto metrics = nlohmann::json::parse(read_file(d + "/metrics.json"));
  EXPECT_EQ(metrics["samples"], 7);
  EXPECT_EQ(metrics["skipped"], 7);
}

std::string train(const std::string& data, const std::string& out, const std::string& extra) {
  return kBin + "/train_pretrain --model " + model() + " --data " + data + " --out " + out +
         " --batch-size 4 --lr 2e-3 --log-every 1 --max-seq-len 256 --num-workers 2 " + extra;
}

TEST(ParquetCli, TrainingMatchesTheJsonlTwinAndResumesAtTheExactSample) {
  SKIP_WITHOUT_PARQUET();
  const std::string d = fresh_dir("parquet_train");
  auto r = run(train(kFixtures + "list.jsonl", d + "/jsonl",
                     "--images " + kFixtures + "images --max-steps 6"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // With a parquet held-out set too (no --images for either).
  r = run(train(kFixtures + "list_snappy_1rg.parquet", d + "/parquet",
                "--max-steps 6 --eval-every 3 --eval " + kFixtures + "single_zstd_rg7.parquet"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  int evals = 0;
  for (const nlohmann::json& j : lines_of(d + "/parquet/metrics.jsonl"))
    if (j.contains("eval_loss")) {
      ++evals;
      EXPECT_EQ(j["eval_samples"], 24) << j.dump();
    }
  EXPECT_GE(evals, 2);
  const std::vector<double> want = losses(d + "/jsonl"), got = losses(d + "/parquet");
  ASSERT_EQ(want.size(), 6u);
  EXPECT_EQ(got, want);

  // Resumed from the checkpoint of step 4 of a like run: steps 5 and 6 as in the straight run.
  r = run(
      train(kFixtures + "list_snappy_1rg.parquet", d + "/saving", "--max-steps 6 --save-every 4"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run(train(kFixtures + "list_snappy_1rg.parquet", d + "/resumed",
                "--max-steps 6 --resume " + d + "/saving/checkpoints/step_00000004"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resumed from"));
  const std::vector<double> resumed = losses(d + "/resumed");
  ASSERT_EQ(resumed.size(), 2u);
  EXPECT_EQ(resumed, std::vector<double>(want.end() - 2, want.end()));
}

// train_sft: under train_pretrain (projector only) a micro-batch of text-only rows has no gradient.
TEST(ParquetCli, TwoRanksMatchOneProcess) {
  SKIP_WITHOUT_PARQUET();
  MINIVLM_SKIP_WITHOUT_MPI();
  const std::string d = fresh_dir("parquet_ranks");
  const std::string data = kFixtures + "list_zstd_rg5_v2.parquet";
  const std::string common = " --model " + model() + " --data " + data +
                             " --lr 2e-3 --log-every 1 --max-seq-len 256 --max-steps 5 ";
  auto r = run("OMP_NUM_THREADS=1 " + kBin + "/train_sft" + common + "--out " + d +
               "/alone --batch-size 2 --grad-accum 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run(mpirun(2) + kBin + "/train_sft" + common + "--out " + d + "/ranks --batch-size 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<double> alone = losses(d + "/alone");
  ASSERT_EQ(alone.size(), 5u);
  EXPECT_EQ(losses(d + "/ranks"), alone);
}

}  // namespace
}  // namespace minivlm
