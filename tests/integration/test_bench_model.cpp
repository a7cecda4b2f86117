// minivlm bench-model: the training batch of every family's layout (tiles), the device and dtype
// placement, and its refusals. Speed is never asserted.
#include <gtest/gtest.h>

#include <cmath>

#include "cli_util.h"

namespace minivlm {
namespace {

using nlohmann::json;
using testing::kBin;
using testing::kSource;
using testing::run;

const std::string kTiny = kSource + "/configs/tiny.json";

json last_json_line(const std::string& out) {
  const size_t end = out.find_last_not_of('\n');
  const size_t start = out.rfind('\n', end);
  return json::parse(out.substr(start == std::string::npos ? 0 : start + 1));
}

std::string train_cmd(const std::string& extra) {
  return kBin + "/minivlm bench-model --what train --config " + kTiny + " --warmup 0 " + extra;
}

TEST(BenchModel, TrainsATiledBatchWithTheSftTrainables) {
  const auto r = run(train_cmd("--batch 2 --seq 80 --tiles 2 --reps 2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json j = last_json_line(r.output);
  EXPECT_EQ(j["tokens"], 160);
  EXPECT_EQ(j["tiles_per_sample"], 2);
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_EQ(j["dtype"], "f32");
  // LLM + projector of configs/tiny.json, counted by PyTorch on scripts/bench/torch_model.py's
  // model of the same config (vision tower frozen).
  EXPECT_EQ(j["trainable_params"], 2950848);
  ASSERT_EQ(j["losses"].size(), 2u);
  ASSERT_EQ(j["seconds"].size(), 2u);
  for (const double loss : j["losses"]) EXPECT_NEAR(loss, std::log(6400.0), 0.5);  // random init
  EXPECT_LT(j["losses"][1].get<double>(), j["losses"][0].get<double>());  // the step trains
}

TEST(BenchModel, RefusesBadTilesSeqDtypeAndDevice) {
  struct Case {
    std::string args, message;
  };
  for (const Case& c : std::vector<Case>{
           {"--batch 1 --seq 80 --tiles 0", "--tiles must be at least 1, got 0"},
           {"--batch 1 --seq 34 --tiles 2", "--seq 34 leaves no text around 2 tile(s) of 16"},
           {"--batch 1 --seq 40 --dtype fp16", "--dtype 'fp16'; valid: f32, bf16"},
           {"--batch 1 --seq 40 --device tpu", "tpu"},
       }) {
    const auto r = run(train_cmd(c.args + " --reps 1"));
    EXPECT_NE(r.exit_code, 0) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.args << "\n" << r.output;
  }
}

// bf16 runs where the back-end computes in it, else is refused naming the dtype and back-end.
TEST(BenchModel, Bf16TrainsOrIsRefusedByName) {
  const auto r = run(train_cmd("--batch 1 --seq 40 --reps 1 --dtype bf16"));
  if (r.exit_code != 0) {
    EXPECT_NE(r.output.find("--dtype bf16: the cpu back-end does not compute in it"),
              std::string::npos)
        << r.output;
    return;
  }
  const json j = last_json_line(r.output);
  EXPECT_EQ(j["dtype"], "bf16");
  EXPECT_NEAR(j["losses"][0].get<double>(), std::log(6400.0), 0.5);
}

// The same seed gives the same model and batch on every device: the CPU emulator of the CUDA
// back-end follows the CPU's losses step after step (fp32).
TEST(BenchModel, CudaEmuLossesFollowTheCpu) {
  const std::string args = "--batch 1 --seq 40 --reps 2 --device ";
  const auto c = run(train_cmd(args + "cpu")), e = run(train_cmd(args + "cuda-emu"));
  ASSERT_EQ(c.exit_code, 0) << c.output;
  ASSERT_EQ(e.exit_code, 0) << e.output;
  const json jc = last_json_line(c.output), je = last_json_line(e.output);
  EXPECT_EQ(je["device"], "cuda-emu");
  ASSERT_EQ(jc["losses"].size(), 2u);
  ASSERT_EQ(je["losses"].size(), 2u);
  for (size_t i = 0; i < 2; ++i)
    EXPECT_NEAR(je["losses"][i].get<double>(), jc["losses"][i].get<double>(),
                1e-5 * jc["losses"][i].get<double>())
        << "step " << i;
}

// f32 and bf16 (weights and KV cache in bf16, as on a GPU).
TEST(BenchModel, GenerateRunsOnTheEmulatedDevice) {
  for (const std::string dtype : {"f32", "bf16"}) {
    const auto r =
        run(kBin + "/minivlm bench-model --what generate --config " + kTiny +
            " --prompt 8 --new-tokens 3 --warmup 0 --reps 1 --device cuda-emu --dtype " + dtype);
    ASSERT_EQ(r.exit_code, 0) << dtype << "\n" << r.output;
    const json j = last_json_line(r.output);
    EXPECT_EQ(j["device"], "cuda-emu");
    EXPECT_EQ(j["dtype"], dtype);
    EXPECT_EQ(j["new_tokens"], 3);
    EXPECT_EQ(j["decode_seconds"].size(), 1u);
  }
}

// --predict: one recorded step priced for a GPU. Shape-only and executed recordings of the same
// step give the same prediction; the kernels add up to the step and come largest first.
TEST(BenchModel, PredictPricesOneStepShapeOnlyOrExecuted) {
  for (const std::string what : {"train --batch 2 --seq 80", "generate --batch 3 --prompt 40"}) {
    json pred[2];
    for (int execute = 0; execute < 2; ++execute) {
      const auto r = run(kBin + "/minivlm bench-model --what " + what + " --config " + kTiny +
                         " --device cuda-emu --dtype bf16 --predict h200 --warmup 0" +
                         (execute ? " --execute" : ""));
      ASSERT_EQ(r.exit_code, 0) << what << "\n" << r.output;
      EXPECT_NE(r.output.find("predicted"), std::string::npos) << r.output;
      const json j = last_json_line(r.output);
      EXPECT_EQ(j["executed"], execute == 1);
      pred[execute] = j["predict"];
    }
    const json& p = pred[0];
    EXPECT_EQ(p["gpu"], "h200");
    EXPECT_EQ(p["hbm_bytes_per_s"], 4.8e12);
    EXPECT_GT(p["step_seconds"].get<double>(), 0);
    EXPECT_GT(p["mfu"].get<double>(), 0);
    EXPECT_LT(p["mfu"].get<double>(), 1);
    double sum = 0, prev = 1e300;
    int64_t launches = 0;
    for (const json& k : p["kernels"]) {
      sum += k["seconds"].get<double>();
      launches += k["launches"].get<int64_t>();
      EXPECT_LE(k["seconds"].get<double>(), prev) << k["name"];
      prev = k["seconds"].get<double>();
    }
    EXPECT_NEAR(sum, p["step_seconds"].get<double>(), 1e-9 * sum) << what;
    EXPECT_EQ(launches, p["launches"].get<int64_t>());
    for (const char* key : {"launches", "bytes", "flops", "model_flops", "step_seconds"})
      EXPECT_EQ(pred[0][key], pred[1][key]) << what << ": " << key;
  }
  const auto gpu = run(train_cmd("--device cuda-emu --predict a100"));
  EXPECT_NE(gpu.exit_code, 0);
  EXPECT_NE(gpu.output.find("valid: h100, h200"), std::string::npos) << gpu.output;
  const auto cpu = run(train_cmd("--device cpu --predict h100"));
  EXPECT_NE(cpu.exit_code, 0);
  EXPECT_NE(cpu.output.find("--predict needs --device cuda-emu"), std::string::npos) << cpu.output;
}

}  // namespace
}  // namespace minivlm
