// Element-wise activation kernels (SwiGLU, GELU in erf and tanh forms, quick_gelu, SiLU), forward
// and backward, against double-precision references, under every schedule of the emulator.
#include <cmath>
#include <functional>
#include <vector>

#include "tests/kernels/kernel_test.h"

namespace minivlm::kernels::test {
namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Inputs over the range where the activations bend, plus saturated tails whose exp overflows.
template <typename T>
std::vector<T> activation_inputs(std::size_t n, std::uint64_t seed) {
  std::vector<T> x = random_values<T>(n, seed, -6, 6);
  if (n > 3) {
    x[0] = round_to<T>(-90.0);
    x[1] = round_to<T>(90.0);
    x[2] = round_to<T>(0.0);
  }
  return x;
}

template <typename T>
class ActivationKernels : public ::testing::Test {};
TYPED_TEST_SUITE(ActivationKernels, StorageTypes);

TYPED_TEST(ActivationKernels, SwigluForwardAndBackward) {
  using T = TypeParam;
  for (const ElementCase& c : element_cases()) {
    SCOPED_TRACE(shape_trace({{"n", static_cast<long>(c.n)}, {"block", c.block}}));
    const auto gate = activation_inputs<T>(c.n, 41);
    const auto up = random_values<T>(c.n, 42, -2, 2);
    const auto dout = random_values<T>(c.n, 43, -1, 1);
    std::vector<T> out, dgate, dup;
    for_each_schedule([&](ScheduleBits& bits) {
      out.assign(c.n, poison<T>());
      dgate.assign(c.n, poison<T>());
      dup.assign(c.n, poison<T>());
      k::swiglu_forward(out.data(), gate.data(), up.data(), c.n, nullptr, c.block);
      k::swiglu_backward(dgate.data(), dup.data(), dout.data(), gate.data(), up.data(), c.n,
                         nullptr, c.block);
      bits.check("out", out);
      bits.check("dgate", dgate);
      bits.check("dup", dup);
    });
    std::vector<double> ref_out(c.n), ref_dgate(c.n), ref_dup(c.n);
    for (std::size_t i = 0; i < c.n; ++i) {
      const double g = to_double(gate[i]), u = to_double(up[i]), d = to_double(dout[i]);
      const double s = sigmoid(g);
      ref_out[i] = g * s * u;
      ref_dgate[i] = d * u * s * (1 + g * (1 - s));
      ref_dup[i] = d * g * s;
    }
    expect_close("out", out, ref_out);
    expect_close("dgate", dgate, ref_dgate);
    expect_close("dup", dup, ref_dup);
  }
}

struct ActivationReference {
  std::function<double(double)> forward, derivative;
};

template <typename T, typename Forward, typename Backward>
void check_activation(Forward forward, Backward backward, const ActivationReference& ref) {
  for (const ElementCase& c : element_cases()) {
    SCOPED_TRACE(shape_trace({{"n", static_cast<long>(c.n)}, {"block", c.block}}));
    const auto x = activation_inputs<T>(c.n, 44);
    const auto dout = random_values<T>(c.n, 45, -1, 1);
    std::vector<T> out, dinp;
    for_each_schedule([&](ScheduleBits& bits) {
      out.assign(c.n, poison<T>());
      dinp.assign(c.n, poison<T>());
      forward(out.data(), x.data(), c.n, nullptr, c.block);
      backward(dinp.data(), dout.data(), x.data(), c.n, nullptr, c.block);
      bits.check("out", out);
      bits.check("dinp", dinp);
    });
    std::vector<double> ref_out(c.n), ref_dinp(c.n);
    for (std::size_t i = 0; i < c.n; ++i) {
      ref_out[i] = ref.forward(to_double(x[i]));
      ref_dinp[i] = to_double(dout[i]) * ref.derivative(to_double(x[i]));
    }
    expect_close("out", out, ref_out);
    expect_close("dinp", dinp, ref_dinp);
  }
}

TYPED_TEST(ActivationKernels, GeluErfForm) {
  using T = TypeParam;
  check_activation<T>(k::gelu_forward<T>, k::gelu_backward<T>,
                      {[](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); },
                       [](double x) {
                         return 0.5 * (1 + std::erf(x / std::sqrt(2.0))) +
                                x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
                       }});
}

// PyTorch's gelu(approximate='tanh') and its derivative (torch's GeluBackward, tanh branch).
TYPED_TEST(ActivationKernels, GeluTanhForm) {
  using T = TypeParam;
  const double k = std::sqrt(2 / M_PI), c = 0.044715;
  check_activation<T>(k::gelu_tanh_forward<T>, k::gelu_tanh_backward<T>,
                      {[=](double x) { return 0.5 * x * (1 + std::tanh(k * (x + c * x * x * x))); },
                       [=](double x) {
                         const double t = std::tanh(k * (x + c * x * x * x));
                         return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * c * x * x);
                       }});
}

TYPED_TEST(ActivationKernels, QuickGelu) {
  using T = TypeParam;
  check_activation<T>(k::quick_gelu_forward<T>, k::quick_gelu_backward<T>,
                      {[](double x) { return x * sigmoid(1.702 * x); },
                       [](double x) {
                         const double s = sigmoid(1.702 * x);
                         return s + 1.702 * x * s * (1 - s);
                       }});
}

TYPED_TEST(ActivationKernels, Silu) {
  using T = TypeParam;
  check_activation<T>(k::silu_forward<T>, k::silu_backward<T>,
                      {[](double x) { return x * sigmoid(x); },
                       [](double x) { return sigmoid(x) * (1 + x * (1 - sigmoid(x))); }});
}

TYPED_TEST(ActivationKernels, InPlace) {
  using T = TypeParam;
  const std::size_t n = 300;
  const auto x = activation_inputs<T>(n, 46);
  std::vector<T> out(n), inplace = x;
  k::gelu_forward(out.data(), x.data(), n, nullptr, 64);
  k::gelu_forward(inplace.data(), inplace.data(), n, nullptr, 64);
  EXPECT_EQ(0, std::memcmp(out.data(), inplace.data(), n * sizeof(T)));
}

}  // namespace
}  // namespace minivlm::kernels::test
