// Helpers of the cuda-emu op tests: the device under test, and ops run on the CPU back-end and on
// that device side by side, forward and backward.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <vector>

#include "core/device.h"
#include "op_test_util.h"

namespace minivlm::testing {

// The emulated device; MINIVLM_TEST_DEVICE=cuda runs the same tests on a real GPU.
inline const Device kEmu = [] {
  const char* d = std::getenv("MINIVLM_TEST_DEVICE");
  return d != nullptr ? parse_device(d) : Device{DeviceType::cuda_emu, 0};
}();

inline Tensor randn(const Shape& s, uint64_t seed) {
  Rng rng(seed);
  return randn(rng, s, DType::f32);
}

// Element-wise |got − want| ≤ rtol · max|want| (exact for rtol 0 or a zero tensor).
inline ::testing::AssertionResult close(const Tensor& got, const Tensor& want, double rtol = 1e-5) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << got.desc() << " vs " << want.desc();
  const std::vector<double> a = got.to_double_vector(), b = want.to_double_vector();
  double scale = 0;
  for (double x : b) scale = std::max(scale, std::abs(x));
  return all_close(a, b, 0.0, rtol * scale);
}

inline Tensor leaf(const Tensor& t, Device d) {
  Tensor out = t.detach().to(d);
  out.set_requires_grad(true);
  return out;
}

// Runs f on CPU leaves and on kEmu copies of them, backpropagates the same random upstream
// gradient through both, and compares outputs and every input gradient.
inline void expect_same(const std::vector<Tensor>& inputs,
                        const std::function<Tensor(const std::vector<Tensor>&)>& f) {
  std::vector<Tensor> cpu, emu;
  for (const Tensor& t : inputs) {
    const bool grad = is_floating(t.dtype());
    cpu.push_back(grad ? leaf(t, kCPU) : t);
    emu.push_back(grad ? leaf(t, kEmu) : t.to(kEmu));
  }
  const Tensor y_cpu = f(cpu), y_emu = f(emu);
  ASSERT_EQ(y_emu.device(), kEmu);
  EXPECT_TRUE(close(y_emu, y_cpu)) << "forward";
  const Tensor g = randn(y_cpu.shape(), 7);
  y_cpu.backward(g);
  y_emu.backward(g.to(kEmu));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!cpu[i].requires_grad()) continue;
    ASSERT_TRUE(emu[i].grad().defined()) << "input " << i;
    EXPECT_EQ(emu[i].grad().device(), kEmu);
    EXPECT_TRUE(close(emu[i].grad(), cpu[i].grad())) << "gradient of input " << i;
  }
}

}  // namespace minivlm::testing
