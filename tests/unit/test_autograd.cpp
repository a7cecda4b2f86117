#include <gtest/gtest.h>

#include "autograd/node.h"
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

}  // namespace
}  // namespace minivlm
