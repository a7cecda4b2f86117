#include "cpu/gemv.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/dtype.h"

namespace minivlm::cpu {

namespace {

// Output rows are taken R at a time so that each loaded chunk of x serves R weight rows; with
// M > 1 the R weight rows are re-read from L1 for every further row of x, never from memory.
template <int R>
void f32_tile(const float* w, int64_t k, const float* x, int64_t m, float* y, int64_t ldy,
              int64_t n, bool accumulate) {
  for (int64_t r = 0; r < m; ++r) {
    const float* xr = x + r * k;
    float s[R] = {};
    for (int j = 0; j < R; ++j) {
      const float* wj = w + (n + j) * k;
      float acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < k; ++i) acc += wj[i] * xr[i];
      s[j] = acc;
    }
    float* yr = y + r * ldy + n;
    for (int j = 0; j < R; ++j) yr[j] = accumulate ? yr[j] + s[j] : s[j];
  }
}

template <int R>
void bf16_tile_portable(const uint16_t* w, int64_t k, const uint16_t* x, int64_t m, float* y,
                        int64_t ldy, int64_t n, bool accumulate) {
  for (int64_t r = 0; r < m; ++r) {
    const uint16_t* xr = x + r * k;
    float* yr = y + r * ldy + n;
    for (int j = 0; j < R; ++j) {
      const uint16_t* wj = w + (n + j) * k;
      float acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < k; ++i) acc += bf16_to_f32(wj[i]) * bf16_to_f32(xr[i]);
      yr[j] = accumulate ? yr[j] + acc : acc;
    }
  }
}

#define MV_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))

// GCC 12 reports the deliberately undefined upper half inside _mm512_reduce_add_ps as
// maybe-uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// Rows this far ahead are prefetched while a tile is summed: a row of a decode matrix is only 1-3
// KiB, too short for the hardware prefetcher to reach full speed before the next tile starts
// (measured 26 → 33 GB/s on one core with 8 rows). Prefetches past the matrix's end never fault.
constexpr int64_t kPrefetchRows = 8;

// 32 bf16 products per vdpbf16ps; a masked load covers a K that is not a multiple of 32.
template <int R>
MV_AVX512_BF16 void bf16_tile_avx512(const uint16_t* w, int64_t k, const uint16_t* x, int64_t m,
                                     float* y, int64_t ldy, int64_t n, bool accumulate) {
  const int64_t kv = k / 32 * 32;
  const __mmask32 tail = static_cast<__mmask32>((uint64_t{1} << (k - kv)) - 1);
  for (int64_t r = 0; r < m; ++r) {
    const uint16_t* xr = x + r * k;
    __m512 acc[R];
    for (int j = 0; j < R; ++j) acc[j] = _mm512_setzero_ps();
    for (int64_t i = 0; i < kv; i += 32) {
      const __m512bh xv = reinterpret_cast<__m512bh>(_mm512_loadu_si512(xr + i));
      for (int j = 0; j < R; ++j)
        _mm_prefetch(reinterpret_cast<const char*>(w + (n + j + kPrefetchRows) * k + i),
                     _MM_HINT_T0);
      for (int j = 0; j < R; ++j)
        acc[j] = _mm512_dpbf16_ps(
            acc[j], reinterpret_cast<__m512bh>(_mm512_loadu_si512(w + (n + j) * k + i)), xv);
    }
    if (tail != 0) {
      const __m512bh xv = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(tail, xr + kv));
      for (int j = 0; j < R; ++j)
        acc[j] = _mm512_dpbf16_ps(
            acc[j],
            reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(tail, w + (n + j) * k + kv)), xv);
    }
    float* yr = y + r * ldy + n;
    for (int j = 0; j < R; ++j) {
      const float s = _mm512_reduce_add_ps(acc[j]);
      yr[j] = accumulate ? yr[j] + s : s;
    }
  }
}

// 64 products of unsigned x and signed w bytes per vpdpbusd, summed in int32 (|sum| ≤ 255 · 127 ·
// K: no overflow below K = 66000).
#define MV_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

template <int R>
MV_AVX512_VNNI void i8_tile_avx512(const I8Rows* w, int64_t k, const U8Rows* x, int64_t m, float* y,
                                   int64_t ldy, int64_t n, bool accumulate) {
  const int64_t kv = k / 64 * 64;
  const __mmask64 tail = k == kv ? 0 : (uint64_t{1} << (k - kv)) - 1;
  for (int64_t r = 0; r < m; ++r) {
    const uint8_t* xr = x->q + r * k;
    __m512i acc[R];
    for (int j = 0; j < R; ++j) acc[j] = _mm512_setzero_si512();
    for (int64_t i = 0; i < kv; i += 64) {
      const __m512i xv = _mm512_loadu_si512(xr + i);
      for (int j = 0; j < R; ++j)
        _mm_prefetch(reinterpret_cast<const char*>(w->q + (n + j + kPrefetchRows) * k + i),
                     _MM_HINT_T0);
      for (int j = 0; j < R; ++j)
        acc[j] = _mm512_dpbusd_epi32(acc[j], xv, _mm512_loadu_si512(w->q + (n + j) * k + i));
    }
    if (tail != 0) {
      const __m512i xv = _mm512_maskz_loadu_epi8(tail, xr + kv);
      for (int j = 0; j < R; ++j)
        acc[j] =
            _mm512_dpbusd_epi32(acc[j], xv, _mm512_maskz_loadu_epi8(tail, w->q + (n + j) * k + kv));
    }
    float* yr = y + r * ldy + n;
    for (int j = 0; j < R; ++j) {
      const int32_t dot = _mm512_reduce_add_epi32(acc[j]) - 128 * w->q_sum[n + j];
      const float s = w->scale[n + j] * x->scale[r] * static_cast<float>(dot);
      yr[j] = accumulate ? yr[j] + s : s;
    }
  }
}

#pragma GCC diagnostic pop

template <int R>
void i8_tile_portable(const I8Rows* w, int64_t k, const U8Rows* x, int64_t m, float* y, int64_t ldy,
                      int64_t n, bool accumulate) {
  for (int64_t r = 0; r < m; ++r) {
    const uint8_t* xr = x->q + r * k;
    float* yr = y + r * ldy + n;
    for (int j = 0; j < R; ++j) {
      const int8_t* wj = w->q + (n + j) * k;
      int32_t dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t i = 0; i < k; ++i) dot += (static_cast<int32_t>(xr[i]) - 128) * wj[i];
      const float s = w->scale[n + j] * x->scale[r] * static_cast<float>(dot);
      yr[j] = accumulate ? yr[j] + s : s;
    }
  }
}

template <typename W, typename X, typename Tile4, typename Tile1>
void row_tiles(const W* w, int64_t k, const X* x, int64_t m, float* y, int64_t ldy, int64_t n0,
               int64_t n1, bool accumulate, Tile4 tile4, Tile1 tile1) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) tile4(w, k, x, m, y, ldy, n, accumulate);
  for (; n < n1; ++n) tile1(w, k, x, m, y, ldy, n, accumulate);
}

}  // namespace

bool has_avx512_bf16() {
  static const bool yes = __builtin_cpu_supports("avx512bf16");
  return yes;
}

void gemv_rows(const float* w, int64_t k, const float* x, int64_t m, float* y, int64_t ldy,
               int64_t n0, int64_t n1, bool accumulate) {
  row_tiles(w, k, x, m, y, ldy, n0, n1, accumulate, f32_tile<4>, f32_tile<1>);
}

bool has_avx512_vnni() {
  static const bool yes = __builtin_cpu_supports("avx512vnni");
  return yes;
}

void gemv_rows_portable(const I8Rows& w, int64_t k, const U8Rows& x, int64_t m, float* y,
                        int64_t ldy, int64_t n0, int64_t n1, bool accumulate) {
  row_tiles(&w, k, &x, m, y, ldy, n0, n1, accumulate, i8_tile_portable<4>, i8_tile_portable<1>);
}

void gemv_rows(const I8Rows& w, int64_t k, const U8Rows& x, int64_t m, float* y, int64_t ldy,
               int64_t n0, int64_t n1, bool accumulate) {
  if (has_avx512_vnni())
    row_tiles(&w, k, &x, m, y, ldy, n0, n1, accumulate, i8_tile_avx512<4>, i8_tile_avx512<1>);
  else
    gemv_rows_portable(w, k, x, m, y, ldy, n0, n1, accumulate);
}

void quantize_rows_i8(const float* w, int64_t n, int64_t k, int8_t* q, float* scale,
                      int32_t* q_sum) {
  for (int64_t r = 0; r < n; ++r) {
    const float* wr = w + r * k;
    float mx = 0;
    for (int64_t i = 0; i < k; ++i) mx = std::max(mx, std::fabs(wr[i]));
    const float s = mx > 0 ? mx / 127.0f : 1.0f;
    int32_t sum = 0;
    for (int64_t i = 0; i < k; ++i) {
      q[r * k + i] = static_cast<int8_t>(std::clamp(std::nearbyint(wr[i] / s), -127.0f, 127.0f));
      sum += q[r * k + i];
    }
    scale[r] = s;
    q_sum[r] = sum;
  }
}

float quantize_u8(const float* x, int64_t k, uint8_t* q) {
  float mx = 0;
  for (int64_t i = 0; i < k; ++i) mx = std::max(mx, std::fabs(x[i]));
  const float s = mx > 0 ? mx / 127.0f : 1.0f, inv = 1.0f / s;
  for (int64_t i = 0; i < k; ++i)
    q[i] = static_cast<uint8_t>(std::clamp(std::nearbyint(x[i] * inv), -127.0f, 127.0f) + 128.0f);
  return s;
}

void gemv_rows_portable(const uint16_t* w, int64_t k, const uint16_t* x, int64_t m, float* y,
                        int64_t ldy, int64_t n0, int64_t n1, bool accumulate) {
  row_tiles(w, k, x, m, y, ldy, n0, n1, accumulate, bf16_tile_portable<4>, bf16_tile_portable<1>);
}

void gemv_rows(const uint16_t* w, int64_t k, const uint16_t* x, int64_t m, float* y, int64_t ldy,
               int64_t n0, int64_t n1, bool accumulate) {
  if (has_avx512_bf16())
    row_tiles(w, k, x, m, y, ldy, n0, n1, accumulate, bf16_tile_avx512<4>, bf16_tile_avx512<1>);
  else
    gemv_rows_portable(w, k, x, m, y, ldy, n0, n1, accumulate);
}

void to_bf16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_bf16(x[i]);
}

}  // namespace minivlm::cpu
