// `eval` on a model from `minivlm init-model` and a dataset from `minivlm make-dataset` against the
// per-sample losses of the independent PyTorch evaluation (scripts/reference/make_eval_goldens.py).
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_util.h"

namespace minivlm {
namespace {

using testing::args_of;
using testing::chatml_tokenizer;
using testing::fresh_dir;
using testing::kBin;
using testing::kSource;
using testing::read_file;
using testing::run;

TEST(EvalParity, PerSampleLossesMatchTheIndependentReference) {
  const auto golden =
      nlohmann::json::parse(read_file(kSource + "/tests/goldens/eval/tiny_seed7.json"));
  const std::string d = fresh_dir("eval_parity");
  auto r = run("cd " + kSource + " && " + kBin + "/minivlm make-dataset --out " + d + "/data" +
               args_of(golden["case"]["make_dataset"]));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run("cd " + kSource + " && " + kBin + "/minivlm init-model --tokenizer " +
          chatml_tokenizer() + " --out " + d + "/model" + args_of(golden["case"]["init_model"]));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run(kBin + "/eval --model " + d + "/model --data " + d + "/data/eval.jsonl --images " + d +
          "/data/images --out " + d + "/eval --batch-size 5");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  std::istringstream in(read_file(d + "/eval/predictions.jsonl"));
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), golden["rows"].size());
  double total = 0;
  int64_t tokens = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& g = golden["rows"][i];
    EXPECT_EQ(rows[i]["index"], g["index"]);
    EXPECT_EQ(rows[i]["tokens"], g["tokens"]);
    const double ours = rows[i]["loss"].get<double>(), ref = g["loss"].get<double>();
    EXPECT_LT(std::abs(ours - ref) / ref, 1e-4) << "sample " << i << ": " << ours << " vs " << ref;
    total += ref * g["tokens"].get<double>();
    tokens += g["tokens"].get<int64_t>();
  }
  const auto metrics = nlohmann::json::parse(read_file(d + "/eval/metrics.json"));
  EXPECT_EQ(metrics["samples"], rows.size());
  EXPECT_EQ(metrics["skipped"], 0);
  EXPECT_EQ(metrics["tokens"], tokens);
  EXPECT_NEAR(metrics["loss"].get<double>(), total / tokens, 1e-4 * total / tokens);
  EXPECT_NEAR(metrics["ppl"].get<double>(), std::exp(total / tokens),
              1e-3 * std::exp(total / tokens));
}

}  // namespace
}  // namespace minivlm

namespace minivlm {
namespace {

TEST(EvalGenerate, WritesExactMatchTokenF1AndPredictions) {
  const auto& w = testing::workspace();
  const std::string d = fresh_dir("eval_generate");
  const auto r =
      run(kBin + "/eval --model " + w.model + " --data " + w.data + "/eval.jsonl --images " +
          w.images + " --out " + d + " --generate --max-new-tokens 6 --max-samples 5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto metrics = nlohmann::json::parse(read_file(d + "/metrics.json"));
  ASSERT_TRUE(metrics.contains("exact_match")) << metrics.dump();
  ASSERT_TRUE(metrics.contains("token_f1")) << metrics.dump();
  std::istringstream in(read_file(d + "/predictions.jsonl"));
  int rows = 0;
  double em = 0;
  for (std::string line; std::getline(in, line); ++rows) {
    const auto j = nlohmann::json::parse(line);
    ASSERT_TRUE(j.contains("prediction") && j.contains("reference")) << line;
    EXPECT_FALSE(j["reference"].get<std::string>().empty());
    em += j["exact_match"].get<bool>() ? 1 : 0;
  }
  EXPECT_EQ(rows, 5);
  EXPECT_DOUBLE_EQ(metrics["exact_match"].get<double>(), em / rows);
}

// A file in which no sample is usable has no loss: eval fails naming the file, with the reasons
// in predictions.jsonl, instead of reporting loss 0 / perplexity 1.
TEST(EvalErrors, NoUsableSampleIsAnError) {
  const auto& w = testing::workspace();
  const std::string d = fresh_dir("eval_nothing");
  std::ofstream(d + "/bad.jsonl")
      << "{not json\n"
      << R"({"conversations": [{"role": "user", "content": "<image>\nHi"}, )"
      << R"({"role": "assistant", "content": "A."}], "image": "missing.png"})"
      << "\n";
  const auto r = run(kBin + "/eval --model " + w.model + " --data " + d + "/bad.jsonl --images " +
                     w.images + " --out " + d + "/out");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("has no usable sample (2 skipped"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("ppl"), std::string::npos) << r.output;
  std::istringstream in(read_file(d + "/out/predictions.jsonl"));
  int skipped = 0;
  for (std::string line; std::getline(in, line);)
    skipped += nlohmann::json::parse(line).contains("skipped");
  EXPECT_EQ(skipped, 2);
}

}  // namespace
}  // namespace minivlm
