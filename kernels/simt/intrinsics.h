// Device functions that CUDA's headers do not provide on the host, as precise host equivalents.
// The device versions of the fast-math ones (__expf, __fdividef, rsqrtf, hexp, ...) are
// approximations, so tests compare emulated results against references with tolerances.
#pragma once

#include <bit>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <type_traits>

#include "keywords.h"

using std::isfinite;
using std::isinf;
using std::isnan;
using std::signbit;

// ---- float and double ------------------------------------------------------------------------
// The fast-math functions keep their C names (glibc declares some of them for itself but exports
// none), so they are defined out of line in intrinsics.cpp.
extern "C" {
float __expf(float x) noexcept;
float __exp10f(float x) noexcept;
float __logf(float x) noexcept;
float __log2f(float x) noexcept;
float __log10f(float x) noexcept;
float __sinf(float x) noexcept;
float __cosf(float x) noexcept;
float __tanf(float x) noexcept;
float __powf(float x, float y) noexcept;
}

inline float __fdividef(float a, float b) { return a / b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __frsqrt_rn(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __saturatef(float x) {
  return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f));
}
inline void sincosf(float x, float* s, float* c) {
  *s = std::sin(x);
  *c = std::cos(x);
}
inline void __sincosf(float x, float* s, float* c) { sincosf(x, s, c); }
inline int __float2int_rn(float x) { return static_cast<int>(std::nearbyint(x)); }
inline int __float2int_rz(float x) { return static_cast<int>(x); }
inline unsigned __float2uint_rn(float x) { return static_cast<unsigned>(std::nearbyint(x)); }
inline float __int2float_rn(int x) { return static_cast<float>(x); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }

// CUDA's min/max accept mixed argument types and return their common type.
template <typename A, typename B>
requires std::is_arithmetic_v<A> && std::is_arithmetic_v<B> std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  if constexpr (std::floating_point<C>)
    return std::fmax(C(a), C(b));
  else
    return C(a) < C(b) ? C(b) : C(a);
}
template <typename A, typename B>
requires std::is_arithmetic_v<A> && std::is_arithmetic_v<B> std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  if constexpr (std::floating_point<C>)
    return std::fmin(C(a), C(b));
  else
    return C(b) < C(a) ? C(b) : C(a);
}

// ---- integer bit operations ------------------------------------------------------------------
inline int __popc(unsigned x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return std::countl_zero(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned>(x)) + 1; }
inline int __ffsll(long long x) {
  return x == 0 ? 0 : std::countr_zero(static_cast<unsigned long long>(x)) + 1;
}
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
inline unsigned __umulhi(unsigned a, unsigned b) {
  return static_cast<unsigned>((static_cast<std::uint64_t>(a) * b) >> 32);
}
inline int __mulhi(int a, int b) {
  return static_cast<int>((static_cast<std::int64_t>(a) * b) >> 32);
}

// Read-only cache loads are plain loads here.
template <typename T>
T __ldg(const T* p) {
  return *p;
}

// ---- __half and __nv_bfloat16 math -----------------------------------------------------------
namespace simt::detail {

inline float to_float(__half x) { return __half2float(x); }
inline float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
T from_float(float x) {
  if constexpr (std::same_as<T, __half>)
    return __float2half_rn(x);
  else
    return __float2bfloat16_rn(x);
}

template <typename T>
concept half_type = std::same_as<T, __half> || std::same_as<T, __nv_bfloat16>;

template <typename T>
concept half_pair = std::same_as<T, __half2> || std::same_as<T, __nv_bfloat162>;

template <half_type T, typename F>
T apply(T x, F f) {
  return from_float<T>(f(to_float(x)));
}

template <half_pair T, typename F>
T apply(T x, F f) {
  T r = x;
  r.x = apply(x.x, f);
  r.y = apply(x.y, f);
  return r;
}

}  // namespace simt::detail

#define SIMT_HALF_FUNCTION(name, half_name, pair_name, expr)        \
  template <simt::detail::half_type T>                              \
  T half_name(T x) {                                                \
    return simt::detail::apply(x, [](float name) { return expr; }); \
  }                                                                 \
  template <simt::detail::half_pair T>                              \
  T pair_name(T x) {                                                \
    return simt::detail::apply(x, [](float name) { return expr; }); \
  }

SIMT_HALF_FUNCTION(v, hexp, h2exp, std::exp(v))
SIMT_HALF_FUNCTION(v, hexp2, h2exp2, std::exp2(v))
SIMT_HALF_FUNCTION(v, hlog, h2log, std::log(v))
SIMT_HALF_FUNCTION(v, hlog2, h2log2, std::log2(v))
SIMT_HALF_FUNCTION(v, hsqrt, h2sqrt, std::sqrt(v))
SIMT_HALF_FUNCTION(v, hrsqrt, h2rsqrt, 1.0f / std::sqrt(v))
SIMT_HALF_FUNCTION(v, hrcp, h2rcp, 1.0f / v)
SIMT_HALF_FUNCTION(v, hsin, h2sin, std::sin(v))
SIMT_HALF_FUNCTION(v, hcos, h2cos, std::cos(v))
SIMT_HALF_FUNCTION(v, htanh, h2tanh, std::tanh(v))
SIMT_HALF_FUNCTION(v, hfloor, h2floor, std::floor(v))
SIMT_HALF_FUNCTION(v, hceil, h2ceil, std::ceil(v))
SIMT_HALF_FUNCTION(v, htrunc, h2trunc, std::trunc(v))
SIMT_HALF_FUNCTION(v, hrint, h2rint, std::nearbyint(v))
#undef SIMT_HALF_FUNCTION

// The product of two 16-bit values is exact in float, so this rounds a*b+c once to float and then
// to the 16-bit type; in rare ties that second rounding differs from the device's single one.
template <simt::detail::half_type T>
T __hfma(T a, T b, T c) {
  using simt::detail::to_float;
  return simt::detail::from_float<T>(std::fma(to_float(a), to_float(b), to_float(c)));
}
template <simt::detail::half_pair T>
T __hfma2(T a, T b, T c) {
  T r = a;
  r.x = __hfma(a.x, b.x, c.x);
  r.y = __hfma(a.y, b.y, c.y);
  return r;
}
