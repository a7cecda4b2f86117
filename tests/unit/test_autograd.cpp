#include <gtest/gtest.h>

#include "autograd/node.h"
#include "device_test_util.h"
#include "ops/ops.h"

namespace minivlm {
namespace {

Tensor param(std::vector<double> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  Tensor t = Tensor::from_vector(v, {n});
  t.set_requires_grad(true);
  return t;
}

TEST(Autograd, SharedSubgraphSumsBothPaths) {
  Tensor x = param({1.0, -2.0, 3.0});
  Tensor y = ops::mul(x, x);                         // used twice below
  Tensor z = ops::sum(ops::add(ops::mul(y, x), y));  // Σ x³ + x²
  z.backward();
  const auto g = x.grad().to_double_vector();
  const double xs[] = {1.0, -2.0, 3.0};
  for (int i = 0; i < 3; ++i) EXPECT_DOUBLE_EQ(g[i], 3 * xs[i] * xs[i] + 2 * xs[i]);
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = param({2.0});
  ops::sum(ops::scale(x, 3.0)).backward();
  ops::sum(ops::mul(x, x)).backward();
  EXPECT_DOUBLE_EQ(x.grad().item(), 3.0 + 4.0);
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Tensor x = param({1.0, 2.0});
  {
    NoGradGuard ng;
    Tensor y = ops::mul(x, x);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
  }
  EXPECT_TRUE(ops::mul(x, x).requires_grad());
}

TEST(Autograd, RequiresGradIsPerParameter) {
  Tensor a = param({1.0, 2.0});
  Tensor frozen = Tensor::from_vector(std::vector<double>{3.0, 4.0}, {2});
  ops::sum(ops::mul(a, frozen)).backward();
  EXPECT_EQ(a.grad().to_double_vector(), (std::vector<double>{3.0, 4.0}));
  EXPECT_FALSE(frozen.grad().defined());
}

TEST(Autograd, GraphIsFreedAfterBackwardUnlessRetained) {
  Tensor x = param({1.5});
  Tensor y = ops::sum(ops::mul(x, x));
  y.backward(Tensor(), /*retain_graph=*/true);
  ASSERT_NE(y.grad_fn(), nullptr);
  y.backward();  // second pass over the retained graph accumulates
  EXPECT_DOUBLE_EQ(x.grad().item(), 2 * 3.0);
  EXPECT_EQ(y.grad_fn(), nullptr);  // freed now: the saved tensors are released
  // A freed root is a leaf that requires grad; backward accumulates into it, not into x.
  y.backward();
  EXPECT_DOUBLE_EQ(x.grad().item(), 6.0);
}

TEST(Autograd, DetachCutsHistory) {
  Tensor x = param({2.0});
  Tensor y = ops::mul(x, x).detach();
  EXPECT_FALSE(y.requires_grad());
  EXPECT_THROW(ops::sum(y).backward(), Error);
}

TEST(Autograd, BackwardNeedsScalarOrGradient) {
  Tensor x = param({1.0, 2.0});
  Tensor y = ops::scale(x, 2.0);
  EXPECT_THROW(y.backward(), Error);
  y.backward(Tensor::from_vector(std::vector<double>{1.0, 10.0}, {2}));
  EXPECT_EQ(x.grad().to_double_vector(), (std::vector<double>{2.0, 20.0}));
}

// A leaf stored in bf16 keeps its .grad in f32 (grad_dtype): two backward passes (two
// micro-batches of gradient accumulation) and two uses of the leaf in one pass both sum in f32.
// The gradients 1 and 3·2⁻⁹ are bf16 values; their sum 1.005859375 is not (bf16 steps by 2⁻⁷
// near 1, so a bf16 sum would read 1.0078125), and in f32 it is exact.
class AutogradBf16Leaf : public ::testing::TestWithParam<Device> {};

TEST_P(AutogradBf16Leaf, AccumulatesItsGradientInF32) {
  const Device device = GetParam();
  const double small = 3.0 / 512, want = 1.0 + small;
  ASSERT_NE(static_cast<float>(want), bf16_to_f32(f32_to_bf16(static_cast<float>(want))));
  EXPECT_EQ(grad_dtype(DType::bf16), DType::f32);
  EXPECT_EQ(grad_dtype(DType::f16), DType::f32);
  EXPECT_EQ(grad_dtype(DType::f32), DType::f32);
  EXPECT_EQ(grad_dtype(DType::f64), DType::f64);
  const auto leaf = [&] {
    Tensor x =
        Tensor::from_vector(std::vector<double>{0.5, -2.0, 3.0}, {3}).to(DType::bf16).to(device);
    x.set_requires_grad(true);
    return x;
  };
  {
    SCOPED_TRACE("two backward passes");
    Tensor x = leaf();
    ops::sum(x).backward();
    ASSERT_EQ(x.grad().dtype(), DType::f32) << "the first gradient is widened";
    EXPECT_EQ(x.grad().device(), device);
    EXPECT_EQ(x.grad().to_double_vector(), (std::vector<double>{1.0, 1.0, 1.0}));
    ops::sum(ops::scale(x, small)).backward();
    ASSERT_EQ(x.grad().dtype(), DType::f32);
    EXPECT_EQ(x.grad().to_double_vector(), (std::vector<double>{want, want, want}));
    x.zero_grad();
    EXPECT_FALSE(x.grad().defined());
  }
  {
    SCOPED_TRACE("two uses in one pass");
    Tensor x = leaf();
    ops::sum(ops::add(x, ops::scale(x, small))).backward();
    ASSERT_EQ(x.grad().dtype(), DType::f32);
    EXPECT_EQ(x.grad().to_double_vector(), (std::vector<double>{want, want, want}));
  }
  {
    SCOPED_TRACE("an intermediate bf16 tensor's gradient stays bf16");
    Tensor x = leaf();
    Tensor y = ops::scale(x, 1.0);  // y's two uses sum in bf16, then reach x once
    ops::sum(ops::add(y, ops::scale(y, small))).backward();
    ASSERT_EQ(x.grad().dtype(), DType::f32);
    const double rounded = bf16_to_f32(f32_to_bf16(static_cast<float>(want)));
    EXPECT_EQ(x.grad().to_double_vector(), (std::vector<double>{rounded, rounded, rounded}));
  }
}

std::vector<Device> cpu_and_test_devices() {
  std::vector<Device> d = {kCPU};
  for (const Device& t : testing::test_devices()) d.push_back(t);
  return d;
}

INSTANTIATE_TEST_SUITE_P(Autograd, AutogradBf16Leaf, ::testing::ValuesIn(cpu_and_test_devices()),
                         [](const ::testing::TestParamInfo<Device>& info) {
                           return testing::param_name(info.param);
                         });

}  // namespace
}  // namespace minivlm
