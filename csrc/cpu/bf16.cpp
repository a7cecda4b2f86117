// The conversion kernels of cpu/bf16.h. Each instruction-set variant is compiled for its target
// with a function attribute and chosen once, at first use, from the CPU's features
// (cpu/cpu_features.h), so one binary runs on every x86-64 CPU with the fastest path it has.
//
// Rounding is core/dtype.h's: bf16 = (u + 0x7fff + ((u >> 16) & 1)) >> 16 for the bits u of a
// non-NaN float, (u >> 16) | 0x40 for a NaN. vcvtne2ps2bf16 computes exactly that except that it
// flushes subnormal inputs to zero; a block holding one goes through the integer form instead.
#include "cpu/bf16.h"

#include <immintrin.h>

#include "core/dtype.h"
#include "cpu/cpu_features.h"
#include "cpu/parallel_ranges.h"

namespace minivlm::cpu {

namespace {

void widen_portable(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = minivlm::bf16_to_f32(src[i]);
}

void round_portable(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = minivlm::f32_to_bf16(src[i]);
}

#if defined(__x86_64__)

__attribute__((target("avx2"))) void widen_avx2(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    const __m256i u = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
    _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(u));
  }
  widen_portable(src + i, dst + i, n - i);
}

// Eight floats' bits → their bf16 bits in the low halves of the 32-bit lanes.
__attribute__((target("avx2"))) __m256i round8_avx2(__m256i u) {
  const __m256i abs = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
  const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i bias = _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  return _mm256_blendv_epi8(rounded, quiet, nan);
}

__attribute__((target("avx2"))) void round_avx2(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i lo = round8_avx2(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
    const __m256i hi =
        round8_avx2(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 8)));
    // packus works within 128-bit lanes: [lo0-3 hi0-3 lo4-7 hi4-7]; the permute restores order.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xd8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), packed);
  }
  round_portable(src + i, dst + i, n - i);
}

// GCC 12 warns inside its own AVX-512 headers (their "undefined" vectors) when they are inlined
// into functions compiled for a target beyond the command line's.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

__attribute__((target("avx512f,avx512bw"))) void widen_avx512(const uint16_t* src, float* dst,
                                                              int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    const __m512i u = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
    _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(u));
  }
  widen_portable(src + i, dst + i, n - i);
}

// The lanes of v holding a subnormal (exponent 0, mantissa not 0).
__attribute__((target("avx512f"))) __mmask16 subnormal_lanes(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  return _mm512_mask_test_epi32_mask(_mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000)), u,
                                     _mm512_set1_epi32(0x7fffff));
}

__attribute__((target("avx512f,avx512bw,avx512bf16"))) void round_avx512bf16(const float* src,
                                                                             uint16_t* dst,
                                                                             int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 lo = _mm512_loadu_ps(src + i), hi = _mm512_loadu_ps(src + i + 16);
    if ((subnormal_lanes(lo) | subnormal_lanes(hi)) != 0) {
      round_portable(src + i, dst + i, 32);
      continue;
    }
    const __m512bh packed = _mm512_cvtne2ps_pbh(hi, lo);
    _mm512_storeu_si512(reinterpret_cast<__m512i*>(dst + i), reinterpret_cast<__m512i>(packed));
  }
  round_portable(src + i, dst + i, n - i);
}

#pragma GCC diagnostic pop

#endif

struct Kernels {
  void (*widen)(const uint16_t*, float*, int64_t);
  void (*round)(const float*, uint16_t*, int64_t);
  const char* name;
};

Kernels choose() {
#if defined(__x86_64__)
  if (cpu_features().avx512_bf16 && cpu_features().avx512bw)
    return {widen_avx512, round_avx512bf16, "avx512-bf16"};
  if (cpu_features().avx2_fma) return {widen_avx2, round_avx2, "avx2"};
#endif
  return {widen_portable, round_portable, "portable"};
}

const Kernels& kernels() {
  static const Kernels k = choose();
  return k;
}

// Conversions of more elements than this are split across the threads.
constexpr int64_t kParallelFrom = 1 << 16;

}  // namespace

void bf16_to_f32(const uint16_t* src, float* dst, int64_t n) { kernels().widen(src, dst, n); }
void f32_to_bf16(const float* src, uint16_t* dst, int64_t n) { kernels().round(src, dst, n); }
const char* bf16_convert_path() { return kernels().name; }

Tensor widen_bf16(const Tensor& t) {
  if (t.dtype() != DType::bf16) return t;
  const Tensor c = t.contiguous();
  Tensor out = Tensor::empty(c.shape(), DType::f32);
  const auto* src = static_cast<const uint16_t*>(c.raw_data());
  float* dst = out.data<float>();
  parallel_ranges(c.numel(), kParallelFrom,
                  [&](int64_t i0, int64_t i1) { bf16_to_f32(src + i0, dst + i0, i1 - i0); });
  return out;
}

Tensor round_to_bf16(const Tensor& t) {
  MV_CHECK(t.dtype() == DType::f32, "round_to_bf16: ", t.desc(), " is not f32");
  const Tensor c = t.contiguous();
  Tensor out = Tensor::empty(c.shape(), DType::bf16);
  const float* src = c.data<float>();
  auto* dst = static_cast<uint16_t*>(out.raw_data());
  parallel_ranges(c.numel(), kParallelFrom,
                  [&](int64_t i0, int64_t i1) { f32_to_bf16(src + i0, dst + i0, i1 - i0); });
  return out;
}

}  // namespace minivlm::cpu
