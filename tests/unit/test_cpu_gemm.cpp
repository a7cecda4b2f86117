// cpu::gemm against plain double-precision loops: every transpose pair, padded leading
// dimensions, alpha/beta, edge sizes (one row, one column, k = 0), calls from inside a parallel
// region; the bf16 conversions (cpu/bf16.h) against core/dtype.h's scalar ones, bit for bit; and
// cpu::gemm_bf16 (cpu/bf16_gemm.h), on each path this CPU has, against double on the shapes of a
// linear layer's forward and backward.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "core/dtype.h"
#include "core/rng.h"
#include "cpu/bf16.h"
#include "cpu/bf16_gemm.h"
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

// ---- bf16 ----

// Every bf16 value's float (all 65536 high halves) with low halves that round down, to even, up,
// and to NaN/infinity; lengths that leave tails for every vector width.
TEST(CpuBf16, ConversionsAreTheScalarOnesBitForBit) {
  std::vector<float> f;
  for (uint32_t hi = 0; hi < 65536; ++hi)
    for (uint32_t lo : {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xc000u, 0xffffu}) {
      const uint32_t u = hi << 16 | lo;
      float x;
      std::memcpy(&x, &u, 4);
      f.push_back(x);
    }
  for (size_t n : {f.size(), size_t{1}, size_t{15}, size_t{31}, size_t{33}}) {
    std::vector<uint16_t> h(n);
    cpu::f32_to_bf16(f.data(), h.data(), static_cast<int64_t>(n));
    for (size_t i = 0; i < n; ++i)
      ASSERT_EQ(h[i], f32_to_bf16(f[i]))
          << cpu::bf16_convert_path() << ": float bits " << std::hex << [&] {
               uint32_t u;
               std::memcpy(&u, &f[i], 4);
               return u;
             }();
    std::vector<float> back(n);
    cpu::bf16_to_f32(h.data(), back.data(), static_cast<int64_t>(n));
    for (size_t i = 0; i < n; ++i) {
      const float want = bf16_to_f32(h[i]);
      ASSERT_EQ(std::memcmp(&back[i], &want, 4), 0) << "bf16 " << std::hex << h[i];
    }
  }
}

// C = op(A)·op(B) over bf16 operands in padded buffers: within one bf16 rounding of the double
// product of the same bf16 values, plus fp32 accumulation error; padding untouched.
void check_gemm_bf16(bool ta, bool tb, const GemmCase& s, Rng& rng) {
  const int64_t lda = (ta ? s.m : s.k) + 3, ldb = (tb ? s.k : s.n) + 5, ldc = s.n + 7;
  std::vector<uint16_t> a(static_cast<size_t>(lda * (ta ? s.k : s.m))),
      b(static_cast<size_t>(ldb * (tb ? s.n : s.k))), c(static_cast<size_t>(ldc * s.m), 0x7fc1);
  for (uint16_t& x : a) x = f32_to_bf16(static_cast<float>(rng.normal(0, 1)));
  for (uint16_t& x : b) x = f32_to_bf16(static_cast<float>(rng.normal(0, 1)));
  cpu::gemm_bf16(ta, tb, s.m, s.n, s.k, a.data(), lda, b.data(), ldb, c.data(), ldc);
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const size_t at = static_cast<size_t>(i * ldc + j);
      if (j >= s.n) {
        ASSERT_EQ(c[at], 0x7fc1) << "padding written at row " << i << " column " << j;
        continue;
      }
      double ref = 0, mag = 0;
      for (int64_t p = 0; p < s.k; ++p) {
        const double av = bf16_to_f32(ta ? a[static_cast<size_t>(p * lda + i)]
                                         : a[static_cast<size_t>(i * lda + p)]);
        const double bv = bf16_to_f32(tb ? b[static_cast<size_t>(j * ldb + p)]
                                         : b[static_cast<size_t>(p * ldb + j)]);
        ref += av * bv;
        mag += std::fabs(av * bv);
      }
      const double got = bf16_to_f32(c[at]);
      ASSERT_NEAR(got, ref, std::fabs(ref) / 256 + 1e-5 * mag)
          << "ta=" << ta << " tb=" << tb << " m=" << s.m << " n=" << s.n << " k=" << s.k << " at ("
          << i << ", " << j << ")";
    }
}

// A linear layer x [74, 64] · Wᵀ (W [172, 64]) and its backward: dX = dY · W, dW = dYᵀ · x; one
// token (decode), one output column, a long inner dimension.
void check_gemm_bf16_shapes() {
  Rng rng(17);
  check_gemm_bf16(false, true, {74, 172, 64}, rng);
  check_gemm_bf16(false, false, {74, 64, 172}, rng);
  check_gemm_bf16(true, false, {172, 64, 74}, rng);
  check_gemm_bf16(true, true, {33, 20, 48}, rng);
  check_gemm_bf16(false, true, {1, 96, 64}, rng);
  check_gemm_bf16(false, false, {40, 1, 64}, rng);
  check_gemm_bf16(false, true, {8, 16, 1031}, rng);
}

TEST(CpuBf16Gemm, ActivePathMatchesDouble) {
  std::printf("bf16 GEMM: %s; conversions: %s\n", cpu::bf16_gemm_description().c_str(),
              cpu::bf16_convert_path());
  check_gemm_bf16_shapes();
}

TEST(CpuBf16Gemm, WidenedPathMatchesDouble) {
  const cpu::Bf16GemmPath before = cpu::set_bf16_gemm_path(cpu::Bf16GemmPath::widened);
  check_gemm_bf16_shapes();
  cpu::set_bf16_gemm_path(before);
}

// oneDNN's matmul on the bf16 operands where it has one at all (on CPUs without bf16
// instructions that is reference code, which the active path never takes: slow, but exact here).
TEST(CpuBf16Gemm, OneDnnPathMatchesDouble) {
  std::string impl;
  if (!cpu::onednn_bf16_matmul_exists(&impl)) GTEST_SKIP() << "oneDNN has no bf16 matmul here";
  std::printf("oneDNN bf16 matmul: %s\n", impl.c_str());
  const cpu::Bf16GemmPath before = cpu::set_bf16_gemm_path(cpu::Bf16GemmPath::onednn);
  check_gemm_bf16_shapes();
  cpu::set_bf16_gemm_path(before);
}

TEST(CpuBf16Gemm, EmptyInnerDimensionGivesZeros) {
  std::vector<uint16_t> a(4, 0x3f80), b(4, 0x3f80), c(12, 0x3f80);
  cpu::gemm_bf16(false, false, 3, 4, 0, a.data(), 1, b.data(), 4, c.data(), 4);
  for (uint16_t x : c) EXPECT_EQ(x, 0);
}

}  // namespace
}  // namespace minivlm
