// The op test table's machinery. Each case of tests/unit/test_op_table.cpp is written once — a
// name, its inputs, the op, and optionally a float64 reference written from the math — and runs as
//   OpTable/OnCpu.MatchesMath/<case>
//     (a) the CPU forward in f64 and in f32 against the reference, and the CPU's f32 gradients
//         against its f64 ones;
//     (b) every input gradient in f64 against central finite differences;
//   OpTable/OnDevice.MatchesCpu/<case>_<device>, for each device of test_devices()
//     (c) forward and every input gradient computed on the device against the CPU's in f32;
//   OpTable/OnCpuBf16.MatchesF32/<case>
//     (d) forward and every input gradient computed on the CPU in bf16 (fp32 arithmetic inside)
//         against the CPU's in f32 on the same bf16-rounded inputs, within bf16 tolerances.
// The chain reference → f64 forward → f64 gradients → f32 CPU → device leaves no link unchecked.
// (a) and (b) share one test: under ctest each test is a process, and starting one costs more
// than most cases.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "device_test_util.h"

namespace minivlm::testing {

using In = std::vector<Tensor>;

struct OpCase {
  std::string name;  // letters, digits and '_': the gtest parameter name
  // Float64 CPU tensors. Floating inputs take the run's dtype and device and are differentiated;
  // integer inputs (ids, targets, rows) are indices and only move to the device.
  In inputs;
  std::function<Tensor(const In&)> op;  // for inputs of either float dtype on any device
  // The float64 output for float64 inputs (the f32 run's inputs widened); none skips (a)'s
  // forward checks.
  std::function<Tensor(const In&)> reference = {};
  double rtol = 1e-5, atol = 1e-5;  // (a): the f32 forward against the reference, per element
  bool finite_differences = true;   // (b); false where the inputs are too large for it
  Gradcheck gradcheck = {};         // (b)'s step and tolerances
  // An f32 run against another: the CPU's f32 gradients against its f64 ones in (a), a device's
  // output and gradients against the CPU's in (c). |got − want| ≤ f32_rtol·max|want| + f32_atol;
  // f32_atol only where a gradient is 0 or nearly so and rounding noise is all there is.
  double f32_rtol = 1e-5, f32_atol = 0;
  // (d): a bf16 run against the f32 one, |got − want| ≤ bf16_rtol·max|want| + bf16_atol. Each
  // bf16 output and each bf16 tensor an op's backward reads (its forward's output, a stored
  // intermediate) carries a relative rounding error up to 2⁻⁹; the default allows a few.
  double bf16_rtol = 1.0 / 64, bf16_atol = 0;
};

// The output of the op on copies of the inputs in `dtype` on `device` (floating ones as leaves),
// and each input's gradient after backpropagating the same upstream values (seed 7) every run
// gets; an index input's gradient is undefined.
struct Run {
  Tensor y;
  In grads;
};

// With bf16_values, the inputs and upstream values are first rounded to bf16, so that an f32 run
// sees the values a bf16 run holds.
inline Run run(const OpCase& c, DType dtype, Device device, bool bf16_values = false) {
  const auto values = [&](const Tensor& t) { return bf16_values ? t.to(DType::bf16) : t; };
  In xs;
  for (const Tensor& t : c.inputs) {
    Tensor x = (is_floating(t.dtype()) ? values(t).to(dtype) : t).to(device).detach();
    if (is_floating(t.dtype())) x.set_requires_grad(true);
    xs.push_back(x);
  }
  Run r{c.op(xs), {}};
  // In the output's dtype: a bf16 run's loss is f32.
  r.y.backward(values(randn(r.y.shape(), 7)).to(r.y.dtype()).to(device));
  for (const Tensor& x : xs) r.grads.push_back(x.requires_grad() ? x.grad() : Tensor());
  return r;
}

// Gradients of `got` against `want`, input by input; `got`'s lie on `device`.
inline void expect_same_grads(const Run& got, const Run& want, Device device, double rtol,
                              double atol) {
  for (size_t i = 0; i < want.grads.size(); ++i) {
    if (!want.grads[i].defined()) continue;
    ASSERT_TRUE(got.grads[i].defined()) << "input " << i << " received no gradient";
    EXPECT_EQ(got.grads[i].device(), device) << "gradient of input " << i;
    EXPECT_TRUE(close(got.grads[i], want.grads[i], rtol, atol)) << "gradient of input " << i;
  }
}
inline void expect_same_grads(const Run& got, const Run& want, Device device, const OpCase& c) {
  expect_same_grads(got, want, device, c.f32_rtol, c.f32_atol);
}

inline In in_dtype(const In& inputs, DType dtype) {
  In out;
  for (const Tensor& t : inputs) out.push_back(is_floating(t.dtype()) ? t.to(dtype) : t);
  return out;
}

// (a) and (b)
inline void check_on_cpu(const OpCase& c) {
  if (c.reference) {
    NoGradGuard ng;
    const Tensor want64 = c.reference(c.inputs), got64 = c.op(c.inputs);
    ASSERT_EQ(got64.shape(), want64.shape()) << "(a) f64 forward";
    EXPECT_TRUE(close(got64, want64, 1e-10)) << "(a) f64 forward against the reference";
    const In x32 = in_dtype(c.inputs, DType::f32);
    const Tensor want32 = c.reference(in_dtype(x32, DType::f64)), got32 = c.op(x32);
    ASSERT_EQ(got32.shape(), want32.shape()) << "(a) f32 forward";
    EXPECT_EQ(got32.dtype(), DType::f32);
    EXPECT_TRUE(all_close(got32, want32.to_double_vector(), c.rtol, c.atol))
        << "(a) f32 forward against the reference";
  }
  {
    SCOPED_TRACE("(a) f32 gradients against f64");
    expect_same_grads(run(c, DType::f32, kCPU), run(c, DType::f64, kCPU), kCPU, c);
  }
  if (c.finite_differences) {
    SCOPED_TRACE("(b) f64 gradients against central differences");
    gradcheck(c.op, c.inputs, c.gradcheck);
  }
}

// (c)
inline void check_on_device(const OpCase& c, Device device) {
  const Run want = run(c, DType::f32, kCPU), got = run(c, DType::f32, device);
  ASSERT_EQ(got.y.device(), device);
  EXPECT_TRUE(close(got.y, want.y, c.f32_rtol, c.f32_atol)) << "(c) forward against the CPU";
  SCOPED_TRACE("(c) gradients against the CPU");
  expect_same_grads(got, want, device, c);
}

// (d)
inline void check_bf16_on_cpu(const OpCase& c) {
  ASSERT_TRUE(backend_for(kCPU).computes(DType::bf16));
  const Run want = run(c, DType::f32, kCPU, true), got = run(c, DType::bf16, kCPU);
  // bf16 storage, except the scalar loss of the cross-entropy (fp32 as on CUDA).
  if (got.y.numel() > 1) {
    EXPECT_EQ(got.y.dtype(), DType::bf16);
  }
  EXPECT_TRUE(close(got.y, want.y, c.bf16_rtol, c.bf16_atol)) << "(d) bf16 forward against f32";
  // The inputs are bf16 leaves: their .grad is f32 (grad_dtype), the bf16 gradients widened.
  for (size_t i = 0; i < got.grads.size(); ++i) {
    if (got.grads[i].defined()) {
      EXPECT_EQ(got.grads[i].dtype(), DType::f32) << "gradient of input " << i;
    }
  }
  SCOPED_TRACE("(d) bf16 gradients against f32");
  expect_same_grads(got, want, kCPU, c.bf16_rtol, c.bf16_atol);
}

}  // namespace minivlm::testing
