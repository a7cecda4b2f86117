// Gradient accumulation in bf16 mixed precision, end to end through train_sft: the parameters are
// bf16 but their gradients accumulate in fp32 (SPEC §6, autograd/node.h grad_dtype), so two
// micro-batches of one sample follow one micro-batch of two within bf16 rounding, on cuda-emu and
// on the CPU, and a bf16 run on cuda-emu follows the fp32 CPU run, with and without accumulation.
// (That the accumulated gradient is the exact fp32 sum is checked bit for bit in
// tests/unit/test_train_step.cpp and test_autograd.cpp.)
//
// Why the tolerances. bf16 keeps 8 significant bits: one rounding moves a value by at most 2⁻⁹
// of itself. The two layouts of a step compute the same per-sample activations but round the
// weight gradients differently: one micro-batch of two rounds each gradient once (its sum over both
// samples), two micro-batches round each sample's gradient, then add them in fp32. AdamW turns a
// gradient's relative error into about the same relative error of its update, and the bf16
// parameters (the masters' rounding) then differ by an ulp here and there. The fp32 master weights
// are compared per tensor (‖a − b‖ / ‖b‖) at 2⁻⁷: AdamW's early steps move every weight by about
// ±lr whatever the size of its gradient, so a gradient element near zero whose sign the roundings
// flip moves its weight by up to 2·lr, and such elements dominate the difference. A loss is a mean
// over many tokens of logits that each carry a few 2⁻⁹, so the losses are compared at 2⁻⁹. Against
// the fp32 CPU run every activation and gradient is rounded too: 2⁻⁷ on losses, 2⁻⁵ on weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "io/safetensors.h"

namespace minivlm {
namespace {

using testing::fresh_dir;
using testing::kBin;
using testing::losses;
using testing::run;
using testing::workspace;

constexpr int kSteps = 5;

// Five train_sft steps of two samples per step on the workspace: `layout` is "accum" (two
// micro-batches of one sample) or "whole" (one micro-batch of two); each run is made once.
const std::string& trained(const std::string& device, const std::string& dtype,
                           const std::string& layout) {
  static std::map<std::string, std::string> runs;
  const std::string key = device + "_" + dtype + "_" + layout;
  if (const auto it = runs.find(key); it != runs.end()) return it->second;
  const auto& w = workspace();
  const std::string d = fresh_dir(key);
  const auto r = run(
      kBin + "/train_sft --model " + w.model + " --data " + w.data + "/sft.jsonl --images " +
      w.images + " --out " + d + " --lr 2e-3 --log-every 1 --max-seq-len 256 --seed 42" +
      " --max-steps " + std::to_string(kSteps) + " --device " + device + " --dtype " + dtype +
      (layout == "accum" ? " --batch-size 1 --grad-accum 2" : " --batch-size 2 --grad-accum 1"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return runs.emplace(key, d).first->second;
}

// max over tensors of ‖a − b‖ / ‖b‖ (the trainable ones: the frozen tower is the same file).
double max_tensor_relative(const std::string& a_path, const std::string& b_path) {
  const SafeTensorsFile a = SafeTensorsFile::open(a_path), b = SafeTensorsFile::open(b_path);
  EXPECT_EQ(a.names(), b.names());
  double worst = 0;
  for (const std::string& name : b.names()) {
    const std::vector<double> x = a.get(name).to_double_vector(),
                              y = b.get(name).to_double_vector();
    double diff2 = 0, norm2 = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      diff2 += (x[i] - y[i]) * (x[i] - y[i]);
      norm2 += y[i] * y[i];
    }
    if (norm2 > 0) worst = std::max(worst, std::sqrt(diff2 / norm2));
  }
  return worst;
}

double max_loss_relative(const std::vector<double>& got, const std::vector<double>& want) {
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i)
    worst = std::max(worst, std::abs(got[i] - want[i]) / std::abs(want[i]));
  return worst;
}

struct Comparison {
  double loss = 0, weights = 0;
};

// Losses step by step and final weights of run `a` against run `b`, within the bounds.
Comparison expect_runs_close(const std::string& a, const std::string& b, double loss_tolerance,
                             double weight_tolerance) {
  const auto la = losses(a), lb = losses(b);
  EXPECT_EQ(la.size(), static_cast<size_t>(kSteps));
  EXPECT_EQ(lb.size(), static_cast<size_t>(kSteps));
  if (la.size() != lb.size()) return {};
  for (size_t i = 0; i < la.size(); ++i)
    EXPECT_NEAR(la[i], lb[i], loss_tolerance * lb[i]) << "step " << i + 1;
  Comparison c;
  c.loss = max_loss_relative(la, lb);
  c.weights = max_tensor_relative(a + "/final/model.safetensors", b + "/final/model.safetensors");
  EXPECT_LE(c.weights, weight_tolerance);
  return c;
}

class Bf16Accumulation : public ::testing::TestWithParam<std::string> {};

// Two micro-batches of one sample against one micro-batch of both, in bf16 on the device.
TEST_P(Bf16Accumulation, MicroBatchesOfOneFollowOneBatchOfTwo) {
  const std::string device = GetParam();
  const std::string accum = trained(device, "bf16", "accum"),
                    whole = trained(device, "bf16", "whole");
  const Comparison c = expect_runs_close(accum, whole, 1.0 / 512, 1.0 / 128);
  // The weights moved: the comparison is of trained weights.
  EXPECT_GT(max_tensor_relative(whole + "/final/model.safetensors",
                                workspace().model + "/model.safetensors"),
            1e-2);
  // The same comparison in fp32 on the CPU: the part of the difference that is not bf16's.
  const Comparison f = expect_runs_close(trained("cpu", "fp32", "accum"),
                                         trained("cpu", "fp32", "whole"), 1e-5, 1e-4);
  std::printf(
      "%s bf16, %d steps, 1 x 2 vs 2 x 1: max relative loss difference %.3g, weights %.3g "
      "(fp32 on the CPU: %.3g, %.3g)\n",
      device.c_str(), kSteps, c.loss, c.weights, f.loss, f.weights);
}

// bf16 on cuda-emu against fp32 on the CPU, each layout against its own.
TEST(Bf16Accumulation, CudaEmuBf16FollowsTheFp32CpuRun) {
  for (const std::string layout : {"whole", "accum"}) {
    SCOPED_TRACE(layout);
    const Comparison c = expect_runs_close(trained("cuda-emu", "bf16", layout),
                                           trained("cpu", "fp32", layout), 1.0 / 128, 1.0 / 32);
    std::printf(
        "cuda-emu bf16 vs cpu fp32, %s, %d steps: max relative loss difference %.3g, weights "
        "%.3g\n",
        layout.c_str(), kSteps, c.loss, c.weights);
  }
}

INSTANTIATE_TEST_SUITE_P(TrainBf16, Bf16Accumulation, ::testing::Values("cuda-emu", "cpu"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "cpu" ? std::string("cpu") : "cuda_emu";
                         });

}  // namespace
}  // namespace minivlm
