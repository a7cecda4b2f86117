// One-row kernels shared by the CPU back-end's loops (cpu/norm.cpp, cpu/rope_embedding.cpp) and the
// fused decode step (cpu/decode.cpp), so that both compute the same bits.
#pragma once
#include <cmath>
#include <cstdint>

namespace minivlm::cpu {

// y = x · rstd · w over n values with rstd = 1 / sqrt(mean(x²) + eps), the statistics in double;
// returns rstd. y may alias x.
template <typename T>
T rmsnorm_row(const T* x, const T* w, int64_t n, double eps, T* y) {
  double ss = 0;
#pragma omp simd reduction(+ : ss)
  for (int64_t i = 0; i < n; ++i) {
    const double d = x[i];
    ss += d * d;
  }
  const T rstd = static_cast<T>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * rstd * w[i];
  return rstd;
}

// Half-split rotation of one head of 2·half values by the angles whose cos/sin are c, s [half]:
// (a, b) → (a·c − b·s, b·c + a·s). y may alias x.
template <typename T>
void rope_row(const T* x, const T* c, const T* s, int64_t half, T* y) {
#pragma omp simd
  for (int64_t i = 0; i < half; ++i) {
    const T a = x[i], b = x[i + half];
    y[i] = a * c[i] - b * s[i];
    y[i + half] = b * c[i] + a * s[i];
  }
}

}  // namespace minivlm::cpu
