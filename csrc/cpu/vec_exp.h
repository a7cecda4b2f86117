// exp for float that the compiler can vectorize: plain arithmetic and bit operations, no libm call,
// so a loop over it becomes 16-lane AVX-512 code where libm's expf stays one element at a time.
// Error ≤ 2 ulp over the whole float range; exp(−inf) = 0, exp(+inf) = +inf, NaN stays NaN.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace minivlm::cpu {

inline float exp_vec(float x) {
  // exp(x) = 2^n · exp(r), n = round(x / ln 2), r = x − n·ln 2 in [−ln2/2, ln2/2] (ln 2 split in
  // two so n·ln2_hi is exact), exp(r) by its degree-7 Taylor polynomial (truncation < 1e-8).
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693145751953125f;
  constexpr float kLn2Lo = 1.42860682030941723212e-6f;
  float xc = x < -104.0f ? -104.0f : x;
  xc = xc > 88.8f ? 88.8f : xc;
  xc = x != x ? 0.0f : xc;
  const float n = std::nearbyint(xc * kLog2e);
  const float r = std::fma(-n, kLn2Lo, std::fma(-n, kLn2Hi, xc));
  float p = 1.0f / 5040.0f;
  p = std::fma(p, r, 1.0f / 720.0f);
  p = std::fma(p, r, 1.0f / 120.0f);
  p = std::fma(p, r, 1.0f / 24.0f);
  p = std::fma(p, r, 1.0f / 6.0f);
  p = std::fma(p, r, 0.5f);
  p = std::fma(p, r, 1.0f);
  p = std::fma(p, r, 1.0f);
  // 2^n in two factors so that n down to −127 (results below the normal range) and up to 128
  // stay representable as float exponents.
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  const float s1 = std::bit_cast<float>((n1 + 127) << 23);
  const float s2 = std::bit_cast<float>((n2 + 127) << 23);
  float y = p * s1 * s2;
  y = x < -104.0f ? 0.0f : y;
  y = x > 88.72283f ? INFINITY : y;
  return x != x ? x : y;
}

// std::exp for double (kept exact), exp_vec for float.
template <typename T>
inline T exp_fast(T x) {
  if constexpr (std::is_same_v<T, float>)
    return exp_vec(x);
  else
    return std::exp(x);
}

}  // namespace minivlm::cpu
