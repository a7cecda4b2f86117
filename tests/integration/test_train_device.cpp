// train_sft on the CUDA back-end (emulated: --device cuda-emu) against the CPU back-end, end to
// end through the real binary: the same per-step losses and gradient norms in metrics.jsonl, the
// same checkpoint files, exact resume on cuda-emu, bf16 mixed precision (on cuda-emu and on the
// CPU), and clear errors for devices that cannot train.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "cuda/gpu.h"
#include "io/safetensors.h"

namespace minivlm {
namespace {

using testing::fresh_dir;
using testing::read_file;
using testing::run;
using testing::train_command;
using testing::train_lines;
using testing::workspace;

std::string train_sft(const std::string& out, const std::string& extra) {
  return train_command("train_sft", workspace().model, "sft.jsonl", out, extra);
}

// max |a − b| / max |b| over the tensors of two safetensors files with the same names, dtypes and
// shapes.
double file_difference(const std::string& a_path, const std::string& b_path) {
  const SafeTensorsFile a = SafeTensorsFile::open(a_path), b = SafeTensorsFile::open(b_path);
  EXPECT_EQ(a.names(), b.names()) << a_path << " vs " << b_path;
  double worst = 0;
  for (const std::string& n : b.names()) {
    if (!a.contains(n)) continue;
    EXPECT_EQ(a.dtype(n), b.dtype(n)) << n;
    EXPECT_EQ(a.shape(n), b.shape(n)) << n;
    const std::vector<double> x = a.get(n).to_double_vector(), y = b.get(n).to_double_vector();
    double scale = 0, err = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      scale = std::max(scale, std::abs(y[i]));
      err = std::max(err, std::abs(x[i] - y[i]));
    }
    worst = std::max(worst, scale > 0 ? err / scale : err);
  }
  return worst;
}

// Five steps on `device`, a checkpoint after the third; it trains there, with no fallback note.
std::string five_steps(const std::string& device) {
  const std::string d = fresh_dir(device);
  const auto r = run(train_sft(d, "--max-steps 5 --save-every 3 --device " + device));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("note: --device"), std::string::npos) << r.output;
  return d;
}

const std::string& cpu_run() {
  static const std::string dir = five_steps("cpu");
  return dir;
}

const std::string& emu_run() {
  static const std::string dir = five_steps("cuda-emu");
  return dir;
}

// The acceptance: five steps print the same losses (to 1e-4) and gradient norms (to 1e-4 of their
// size) on both back-ends.
TEST(TrainDevice, CudaEmuPrintsTheCpuLossesAndWritesTheSameCheckpoints) {
  const auto cpu = train_lines(cpu_run()), emu = train_lines(emu_run());
  ASSERT_EQ(cpu.size(), 5u);
  ASSERT_EQ(emu.size(), 5u);
  for (size_t i = 0; i < cpu.size(); ++i) {
    EXPECT_EQ(emu[i]["step"], cpu[i]["step"]);
    const double lc = cpu[i]["loss"].get<double>(), le = emu[i]["loss"].get<double>();
    const double nc = cpu[i]["grad_norm"].get<double>(), ne = emu[i]["grad_norm"].get<double>();
    EXPECT_NEAR(le, lc, 1e-4) << "step " << i + 1;
    EXPECT_NEAR(ne, nc, 1e-4 * nc) << "step " << i + 1;
  }
  for (const char* f :
       {"/checkpoints/step_00000003/model.safetensors",
        "/checkpoints/step_00000005/optimizer.safetensors", "/final/model.safetensors"})
    EXPECT_LE(file_difference(emu_run() + f, cpu_run() + f), 1e-4) << f;
  const auto run_json = nlohmann::json::parse(read_file(emu_run() + "/run.json"));
  EXPECT_EQ(run_json["device"], "cuda-emu");
}

TEST(TrainDevice, ResumeOnCudaEmuContinuesExactly) {
  const std::string d = fresh_dir("emu_resumed");
  const auto r = run(train_sft(
      d, "--max-steps 5 --device cuda-emu --resume " + emu_run() + "/checkpoints/step_00000003"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto straight = train_lines(emu_run()), resumed = train_lines(d);
  ASSERT_EQ(resumed.size(), 2u);
  for (size_t i = 0; i < resumed.size(); ++i) {
    EXPECT_EQ(resumed[i]["step"], straight[3 + i]["step"]);
    EXPECT_EQ(resumed[i]["loss"], straight[3 + i]["loss"]);
  }
  EXPECT_TRUE(read_file(emu_run() + "/final/model.safetensors") ==
              read_file(d + "/final/model.safetensors"));
}

// bf16 parameters and activations with fp32 masters, on each back-end that computes bf16: the
// losses follow the fp32 CPU run within 1% (bf16 keeps 8 significant bits), and checkpoints hold
// the fp32 master weights.
class TrainDeviceBf16 : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainDeviceBf16, FollowsTheFp32CpuRun) {
  const std::string device = GetParam();
  const std::string d = fresh_dir(device + "_bf16");
  const auto r = run(train_sft(d, "--max-steps 3 --device " + device + " --dtype bf16"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto cpu = train_lines(cpu_run()), half = train_lines(d);
  ASSERT_EQ(half.size(), 3u);
  for (size_t i = 0; i < half.size(); ++i) {
    const double lc = cpu[i]["loss"].get<double>(), lh = half[i]["loss"].get<double>();
    EXPECT_NEAR(lh, lc, 1e-2 * lc) << "step " << i + 1;
  }
  const SafeTensorsFile f = SafeTensorsFile::open(d + "/final/model.safetensors");
  for (const std::string& n : f.names()) EXPECT_EQ(f.dtype(n), DType::f32) << n;
  // A trained weight is its fp32 master, not the bf16 parameter widened back.
  const Tensor trained = f.get("model.layers.0.mlp.gate_proj.weight");
  EXPECT_NE(trained.to_double_vector(), trained.to(DType::bf16).to(DType::f32).to_double_vector());
  // The frozen tower is saved as loaded, not as its bf16 image.
  const SafeTensorsFile init = SafeTensorsFile::open(workspace().model + "/model.safetensors");
  const std::string tower = "vision_encoder.vision_model.encoder.layers.0.mlp.fc1.weight";
  EXPECT_EQ(f.get(tower).to_double_vector(), init.get(tower).to_double_vector());
}

INSTANTIATE_TEST_SUITE_P(TrainDevice, TrainDeviceBf16, ::testing::Values("cuda-emu", "cpu"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "cpu" ? std::string("cpu") : "cuda_emu";
                         });

// The demo's pretraining (scripts/demo.sh: every weight trains, warm-up then decay) shortened to
// 40 steps on the workspace: in bf16 on the CPU the loss curve stays within 2% of the fp32 run's
// at every step, the last step included, while it falls by half.
TEST(TrainDevice, Bf16DemoPretrainingOnTheCpuFollowsFp32) {
  std::vector<double> curve[2];
  for (int i = 0; i < 2; ++i) {
    const std::string dtype = i == 0 ? "fp32" : "bf16";
    const std::string d = fresh_dir("demo_" + dtype);
    const auto r =
        run(train_command("train_pretrain", workspace().model, "pretrain.jsonl", d,
                          "--train all --warmup-steps 4 --max-steps 40 --dtype " + dtype));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    curve[i] = testing::losses(d);
    ASSERT_EQ(curve[i].size(), 40u);
  }
  const std::vector<double>&fp32 = curve[0], &bf16 = curve[1];
  EXPECT_LT(fp32.back(), 0.6 * fp32.front()) << "the run learned";
  for (size_t s = 0; s < fp32.size(); ++s)
    EXPECT_NEAR(bf16[s], fp32[s], 0.02 * fp32[s]) << "step " << s + 1;
  std::printf("demo pretraining, 40 steps: final loss fp32 %.4f, bf16 %.4f (%+.2f%%)\n",
              fp32.back(), bf16.back(), 100 * (bf16.back() / fp32.back() - 1));
}

TEST(TrainDevice, DeviceErrorsNameTheOptionAndTheWayOut) {
  const std::string d = fresh_dir("errors");
  if (!gpu_available()) {
    const auto r = run(train_sft(d, "--max-steps 1 --device cuda"));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("--device cuda: not usable (no GPU"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("--device cuda-emu"), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace minivlm
