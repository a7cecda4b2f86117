// The CPU kernels under the ops against plain double-precision loops: the vectorizable exp over
// the whole float range; blocked column sums and row-broadcast arithmetic at sizes past their
// block widths and parallel thresholds.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/rng.h"
#include "cpu/vec_exp.h"
#include "ops/ops.h"

namespace minivlm {
namespace {

// Distance in units in the last place of the float nearest to the exact value.
double ulps(float got, double exact) {
  const float nearest = static_cast<float>(exact);
  const double ulp = std::nextafter(nearest, std::numeric_limits<float>::infinity()) -
                     static_cast<double>(nearest);
  return std::fabs(static_cast<double>(got) - exact) / ulp;
}

TEST(CpuVecExp, WithinTwoUlpOverTheFloatRange) {
  double worst = 0;
  float worst_x = 0;
  // Every 4099th float bit pattern in (−104, 88.7): normal, subnormal and overflow-adjacent
  // results.
  for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 4099) {
    const uint32_t b32 = static_cast<uint32_t>(bits);
    float x;
    std::memcpy(&x, &b32, sizeof x);
    if (!(x > -104.0f && x < 88.72f)) continue;
    const double e = ulps(cpu::exp_vec(x), std::exp(static_cast<double>(x)));
    if (e > worst) worst = e, worst_x = x;
  }
  EXPECT_LE(worst, 2.0) << "at x = " << worst_x;
}

TEST(CpuVecExp, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(cpu::exp_vec(0.0f), 1.0f);
  EXPECT_EQ(cpu::exp_vec(-inf), 0.0f);
  EXPECT_EQ(cpu::exp_vec(-200.0f), 0.0f);
  EXPECT_EQ(cpu::exp_vec(inf), inf);
  EXPECT_EQ(cpu::exp_vec(89.0f), inf);
  EXPECT_TRUE(std::isnan(cpu::exp_vec(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(cpu::exp_vec(88.7f), std::exp(88.7f));
}

TEST(CpuReductions, ColumnSumsPastTheBlockWidthSumInRowOrder) {
  const int64_t rows = 7, cols = 600;  // 600 columns: two full blocks of 256 and a tail
  std::vector<float> v(static_cast<size_t>(rows * cols));
  Rng rng(3);
  for (float& x : v) x = static_cast<float>(rng.normal(0, 1));
  const std::vector<float> s = ops::sum(Tensor::from_vector(v, {rows, cols}), 0).to_float_vector();
  ASSERT_EQ(s.size(), static_cast<size_t>(cols));
  for (int64_t j = 0; j < cols; ++j) {
    double ref = 0;
    for (int64_t i = 0; i < rows; ++i) ref += v[static_cast<size_t>(i * cols + j)];
    EXPECT_EQ(s[static_cast<size_t>(j)], static_cast<float>(ref)) << "column " << j;
  }
}

TEST(CpuElementwise, RowBroadcastReadsTheSmallOperandInPlace) {
  const int64_t rows = 300, cols = 130;  // above the parallel threshold
  std::vector<float> a(static_cast<size_t>(rows * cols)), b(static_cast<size_t>(cols));
  Rng rng(9);
  for (float& x : a) x = static_cast<float>(rng.normal(0, 1));
  for (float& x : b) x = static_cast<float>(rng.normal(0, 1));
  const Tensor ta = Tensor::from_vector(a, {rows, cols});
  const Tensor tb = Tensor::from_vector(b, {1, cols});
  const std::vector<float> sum = ops::add(ta, tb).to_float_vector();
  const std::vector<float> diff = ops::sub(ta, tb).to_float_vector();
  const std::vector<float> prod = ops::mul(ta, tb.reshape({cols})).to_float_vector();
  const std::vector<float> rsub = ops::sub(tb, ta).to_float_vector();  // the broadcast one first
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      const size_t at = static_cast<size_t>(i * cols + j);
      const float x = a[at], y = b[static_cast<size_t>(j)];
      ASSERT_EQ(sum[at], x + y);
      ASSERT_EQ(diff[at], x - y);
      ASSERT_EQ(prod[at], x * y);
      ASSERT_EQ(rsub[at], y - x);
    }
}

}  // namespace
}  // namespace minivlm
