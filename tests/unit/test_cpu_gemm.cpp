// cpu::gemm against plain double-precision loops: every transpose pair, padded leading
// dimensions, alpha/beta, edge sizes (one row, one column, k = 0), calls from inside a parallel
// region.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/rng.h"
#include "cpu/gemm.h"

namespace minivlm {
namespace {

struct GemmCase {
  int64_t m, n, k;
};

// C = alpha·op(A)·op(B) + beta·C with every operand in a buffer wider than it needs.
void check_gemm(bool ta, bool tb, const GemmCase& s, float alpha, float beta, Rng& rng) {
  const int64_t lda = (ta ? s.m : s.k) + 3, ldb = (tb ? s.k : s.n) + 5, ldc = s.n + 7;
  std::vector<float> a(static_cast<size_t>(lda * (ta ? s.k : s.m))),
      b(static_cast<size_t>(ldb * (tb ? s.n : s.k))), c(static_cast<size_t>(ldc * s.m));
  for (float& x : a) x = static_cast<float>(rng.normal(0, 1));
  for (float& x : b) x = static_cast<float>(rng.normal(0, 1));
  for (float& x : c) x = static_cast<float>(rng.normal(0, 1));
  const std::vector<float> c0 = c;
  cpu::gemm<float>(ta, tb, s.m, s.n, s.k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const size_t at = static_cast<size_t>(i * ldc + j);
      if (j >= s.n) {  // padding is never written
        ASSERT_EQ(c[at], c0[at]) << "row " << i << " column " << j;
        continue;
      }
      double ref = 0, mag = 0;
      for (int64_t p = 0; p < s.k; ++p) {
        const double av =
            ta ? a[static_cast<size_t>(p * lda + i)] : a[static_cast<size_t>(i * lda + p)];
        const double bv =
            tb ? b[static_cast<size_t>(j * ldb + p)] : b[static_cast<size_t>(p * ldb + j)];
        ref += av * bv;
        mag += std::fabs(av * bv);
      }
      ref = alpha * ref + (beta == 0 ? 0.0 : beta * static_cast<double>(c0[at]));
      const double tol = 1e-6 * (std::fabs(alpha) * mag + std::fabs(beta * c0[at])) + 1e-6;
      ASSERT_NEAR(c[at], ref, tol) << "ta=" << ta << " tb=" << tb << " m=" << s.m << " n=" << s.n
                                   << " k=" << s.k << " at (" << i << ", " << j << ")";
    }
  }
}

TEST(CpuGemm, MatchesDoubleReferenceForEveryLayout) {
  Rng rng(11);
  const GemmCase cases[] = {{37, 53, 29}, {64, 96, 128}, {1, 45, 17}, {23, 1, 19}, {5, 7, 1}};
  for (const GemmCase& s : cases)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        check_gemm(ta, tb, s, 1.0f, 0.0f, rng);
        check_gemm(ta, tb, s, 0.75f, -0.5f, rng);
      }
}

TEST(CpuGemm, EmptyInnerDimensionScalesC) {
  std::vector<float> a(4, 1.0f), b(4, 1.0f), c(12, 2.0f);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      std::fill(c.begin(), c.end(), 2.0f);
      cpu::gemm<float>(ta, tb, 3, 4, 0, 1.0f, a.data(), 1, b.data(), 1, 0.5f, c.data(), 4);
      for (float x : c) EXPECT_EQ(x, 1.0f) << "ta=" << ta << " tb=" << tb;
      c[0] = std::numeric_limits<float>::quiet_NaN();
      cpu::gemm<float>(ta, tb, 3, 4, 0, 1.0f, a.data(), 1, b.data(), 1, 0.0f, c.data(), 4);
      for (float x : c) EXPECT_EQ(x, 0.0f) << "beta = 0 overwrites, NaN included";
    }
}

TEST(CpuGemm, InsideAParallelRegionEachThreadGetsItsOwnProduct) {
  const int64_t m = 48, n = 40, k = 32;
  std::vector<float> a(static_cast<size_t>(m * k)), b(static_cast<size_t>(k * n));
  Rng rng(5);
  for (float& x : a) x = static_cast<float>(rng.normal(0, 1));
  for (float& x : b) x = static_cast<float>(rng.normal(0, 1));
  std::vector<float> serial(static_cast<size_t>(m * n));
  cpu::gemm<float>(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, serial.data(), n);
  std::vector<std::vector<float>> out(8, std::vector<float>(static_cast<size_t>(m * n)));
#pragma omp parallel for num_threads(2)
  for (int i = 0; i < 8; ++i)
    cpu::gemm<float>(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, out[i].data(), n);
  for (const auto& o : out)
    for (size_t i = 0; i < o.size(); ++i)
      ASSERT_NEAR(o[i], serial[i], 1e-5f * (1 + std::fabs(serial[i])));
}

}  // namespace
}  // namespace minivlm
