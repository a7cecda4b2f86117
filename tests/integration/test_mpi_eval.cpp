// eval under mpirun: the records split across ranks, the sums gathered, the same metrics.json and
// predictions.jsonl as one process — also for a count that does not divide evenly and a bad record.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "mpi_util.h"

namespace minivlm {
namespace {

using testing::fresh_dir;
using testing::kBin;
using testing::mpirun;
using testing::read_file;
using testing::run;
using testing::RunResult;
using testing::workspace;

RunResult eval(const std::string& launcher, const std::string& data, const std::string& out,
               const std::string& extra = "") {
  const auto& w = workspace();
  return run(launcher + kBin + "/eval --model " + w.model + " --data " + data + " --images " +
             w.images + " --out " + out + " --batch-size 2 " + extra);
}

void expect_same_metrics(const std::string& a, const std::string& b) {
  const auto ma = nlohmann::json::parse(read_file(a + "/metrics.json"));
  const auto mb = nlohmann::json::parse(read_file(b + "/metrics.json"));
  for (const char* k : {"samples", "skipped", "tokens"}) EXPECT_EQ(ma[k], mb[k]) << k;
  // Per-sample losses are fp32 sums over one sample's tokens: equal up to rounding whatever the
  // batch they were padded into (measured: identical).
  for (const char* k : {"loss", "ppl"})
    EXPECT_NEAR(ma[k].get<double>(), mb[k].get<double>(), 1e-6 * ma[k].get<double>()) << k;
  std::istringstream pa(read_file(a + "/predictions.jsonl")),
      pb(read_file(b + "/predictions.jsonl"));
  size_t lines = 0;
  for (std::string la, lb; std::getline(pa, la);) {
    ASSERT_TRUE(std::getline(pb, lb)) << "fewer predictions in " << b;
    const auto ja = nlohmann::json::parse(la), jb = nlohmann::json::parse(lb);
    EXPECT_EQ(ja["index"], jb["index"]);
    EXPECT_EQ(ja.value("skipped", ""), jb.value("skipped", ""));
    EXPECT_EQ(ja.value("tokens", -1), jb.value("tokens", -1));
    EXPECT_NEAR(ja.value("loss", 0.0), jb.value("loss", 0.0), 1e-6 * ja.value("loss", 1.0));
    ++lines;
  }
  EXPECT_EQ(lines, ma["samples"].get<size_t>() + ma["skipped"].get<size_t>());
}

TEST(MpiEval, RanksGiveTheMetricsOfOneProcess) {
  MINIVLM_SKIP_WITHOUT_MPI();
  const std::string dir = fresh_dir("mpi_eval");
  // The held-out set plus one record whose image is missing (skipped, counted once).
  std::string data = read_file(workspace().data + "/eval.jsonl");
  auto bad = nlohmann::json::parse(data.substr(0, data.find('\n')));
  bad["image"] = "missing.png";
  data += bad.dump() + "\n";
  std::ofstream(dir + "/eval.jsonl") << data;

  RunResult r = eval("", dir + "/eval.jsonl", dir + "/one");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = eval(mpirun(2), dir + "/eval.jsonl", dir + "/two");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto m = nlohmann::json::parse(read_file(dir + "/one/metrics.json"));
  EXPECT_EQ(m["samples"], 12);
  EXPECT_EQ(m["skipped"], 1);
  expect_same_metrics(dir + "/one", dir + "/two");
  EXPECT_EQ(read_file(dir + "/one/predictions.jsonl"), read_file(dir + "/two/predictions.jsonl"));

  // 11 records on 3 ranks: shares of 4, 4 and 3.
  r = eval("", dir + "/eval.jsonl", dir + "/one11", "--max-samples 11");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = eval(mpirun(3), dir + "/eval.jsonl", dir + "/three11", "--max-samples 11");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(read_file(dir + "/three11/metrics.json"))["samples"], 11);
  expect_same_metrics(dir + "/one11", dir + "/three11");
}

}  // namespace
}  // namespace minivlm
