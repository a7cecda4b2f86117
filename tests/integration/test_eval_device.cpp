// `eval` and `infer` on --device cuda-emu (the CUDA back-end's host code and kernels emulated):
// in fp32 (--decode-dtype f32) per-sample losses against the independent PyTorch evaluation
// (scripts/reference/make_eval_goldens.py) and the CPU run, greedy replies equal to the CPU's; in
// bf16 (the default on a device) losses within bf16's tolerance of the reference; `--device cuda`
// without a GPU refused as the trainer refuses it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "cuda/gpu.h"

namespace minivlm {
namespace {

using testing::args_of;
using testing::chatml_tokenizer;
using testing::fresh_dir;
using testing::kBin;
using testing::kSource;
using testing::read_file;
using testing::run;

std::vector<nlohmann::json> rows_of(const std::string& path) {
  std::istringstream in(read_file(path));
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

// The golden case's dataset and untrained tiny model, made once.
struct Case {
  nlohmann::json golden;
  std::string dir;
};

const Case& eval_case() {
  static const Case c = [] {
    Case k;
    k.golden = nlohmann::json::parse(read_file(kSource + "/tests/goldens/eval/tiny_seed7.json"));
    k.dir = fresh_dir("eval_device");
    auto r = run("cd " + kSource + " && " + kBin + "/minivlm make-dataset --out " + k.dir +
                 "/data" + args_of(k.golden["case"]["make_dataset"]));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    r = run("cd " + kSource + " && " + kBin + "/minivlm init-model --tokenizer " +
            chatml_tokenizer() + " --out " + k.dir + "/model" +
            args_of(k.golden["case"]["init_model"]));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return k;
  }();
  return c;
}

std::string eval_command(const Case& c, const std::string& device, const std::string& out,
                         const std::string& extra = " --generate --max-new-tokens 6") {
  return kBin + "/eval --model " + c.dir + "/model --data " + c.dir + "/data/eval.jsonl --images " +
         c.dir + "/data/images --out " + out + " --batch-size 5" + extra + " --device " + device;
}

TEST(EvalDevice, CudaEmuLossesAndRepliesMatchTheReferenceAndTheCpu) {
  const Case& c = eval_case();
  auto r = run(eval_command(c, "cuda-emu --decode-dtype f32", c.dir + "/emu"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run(eval_command(c, "cpu", c.dir + "/cpu"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto emu = rows_of(c.dir + "/emu/predictions.jsonl");
  const auto cpu = rows_of(c.dir + "/cpu/predictions.jsonl");
  const auto& golden = c.golden["rows"];
  ASSERT_EQ(emu.size(), golden.size());
  ASSERT_EQ(cpu.size(), golden.size());
  for (size_t i = 0; i < emu.size(); ++i) {
    EXPECT_EQ(emu[i]["tokens"], golden[i]["tokens"]) << "sample " << i;
    const double ours = emu[i]["loss"].get<double>(), ref = golden[i]["loss"].get<double>(),
                 on_cpu = cpu[i]["loss"].get<double>();
    EXPECT_LT(std::abs(ours - ref) / ref, 1e-4) << "sample " << i << ": " << ours << " vs " << ref;
    EXPECT_LT(std::abs(ours - on_cpu) / on_cpu, 1e-4)
        << "sample " << i << ": " << ours << " vs " << on_cpu << " on the cpu";
    EXPECT_FALSE(emu[i]["prediction"].get<std::string>().empty()) << "sample " << i;
    EXPECT_EQ(emu[i]["prediction"], cpu[i]["prediction"]) << "sample " << i;
  }
}

// The default on a device is bf16: metrics.json says so, and each sample's loss is within bf16's
// tolerance of the fp64 reference (not within fp32's: the run is not fp32). The CPU refuses bf16.
TEST(EvalDevice, CudaEmuDefaultsToBf16WithinItsToleranceOfTheReference) {
  const Case& c = eval_case();
  auto r = run(eval_command(c, "cuda-emu", c.dir + "/emu_bf16", ""));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[cuda-emu, bf16]"), std::string::npos) << r.output;
  const auto metrics = nlohmann::json::parse(read_file(c.dir + "/emu_bf16/metrics.json"));
  EXPECT_EQ(metrics["dtype"], "bf16");
  EXPECT_EQ(metrics["device"], "cuda-emu");
  const auto bf16 = rows_of(c.dir + "/emu_bf16/predictions.jsonl");
  const auto& golden = c.golden["rows"];
  ASSERT_EQ(bf16.size(), golden.size());
  double worst = 0;
  for (size_t i = 0; i < bf16.size(); ++i) {
    EXPECT_EQ(bf16[i]["tokens"], golden[i]["tokens"]) << "sample " << i;
    const double ours = bf16[i]["loss"].get<double>(), ref = golden[i]["loss"].get<double>();
    worst = std::max(worst, std::abs(ours - ref) / ref);
    EXPECT_LT(std::abs(ours - ref) / ref, 1e-2) << "sample " << i << ": " << ours << " vs " << ref;
  }
  std::printf("eval bf16 on cuda-emu: worst per-sample loss error %.3g of the fp64 reference\n",
              worst);
  EXPECT_GT(worst, 1e-5) << "the bf16 run matches fp32 to 1e-5: not bf16";
  r = run(eval_command(c, "cpu --decode-dtype bf16", c.dir + "/cpu_bf16", ""));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("eval: --decode-dtype bf16 on --device cpu"), std::string::npos)
      << r.output;
}

TEST(EvalDevice, InferOnCudaEmuStreamsTheCpuReply) {
  const Case& c = eval_case();
  const std::string base = kBin + "/infer --model " + c.dir + "/model --image " + kSource +
                           "/tests/fixtures/images/image-01-golden-dog-balloons.jpg"
                           " --prompt 'What is in the picture?' --greedy --max-new-tokens 8";
  const auto emu = run("{ " + base + " --device cuda-emu --decode-dtype f32 2>/dev/null; }");
  ASSERT_EQ(emu.exit_code, 0) << emu.output;
  const auto cpu = run("{ " + base + " --device cpu --decode-dtype f32 2>/dev/null; }");
  ASSERT_EQ(cpu.exit_code, 0) << cpu.output;
  EXPECT_GT(emu.output.size(), 1u);
  EXPECT_EQ(emu.output, cpu.output);
  // i8 and the thread count belong to the CPU decoder.
  const auto bad = run(base + " --device cuda-emu --decode-dtype i8");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("infer: --decode-dtype i8"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("--device cuda-emu"), std::string::npos) << bad.output;
  const auto threads = run(base + " --device cuda-emu --decode-threads 2");
  EXPECT_NE(threads.exit_code, 0);
  EXPECT_NE(threads.output.find("--decode-threads"), std::string::npos) << threads.output;
}

TEST(EvalDevice, CudaWithoutAGpuIsTheTrainersError) {
  if (gpu_available()) GTEST_SKIP() << "a GPU is usable here";
  const Case& c = eval_case();
  for (const std::string bin : {"eval", "infer"}) {
    const std::string cmd =
        bin == "eval" ? eval_command(c, "cuda", c.dir + "/cuda")
                      : kBin + "/infer --model " + c.dir + "/model --prompt hi --device cuda";
    const auto r = run(cmd);
    EXPECT_NE(r.exit_code, 0) << bin;
    EXPECT_NE(r.output.find("--device cuda: not usable (no GPU"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("--device cuda-emu"), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace minivlm
