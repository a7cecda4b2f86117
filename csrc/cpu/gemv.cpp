#include "cpu/gemv.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "cpu/bf16.h"
#include "cpu/cpu_features.h"

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
      for (int64_t i = 0; i < k; ++i)
        acc += minivlm::bf16_to_f32(wj[i]) * minivlm::bf16_to_f32(xr[i]);
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

// AVX2 + FMA: 16 products per row and step in two independent sums, so that a tile of four rows
// keeps eight FMA chains in flight (one sum per row is bound by the FMA latency, not by memory).
#define MV_AVX2 __attribute__((target("avx2,fma")))

MV_AVX2 inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
MV_AVX2 inline __m256 load8(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
inline float widen(float v) { return v; }
inline float widen(uint16_t v) { return minivlm::bf16_to_f32(v); }

MV_AVX2 inline float sum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
MV_AVX2 inline int32_t sum8(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1)));
}

// x as fp32 rows: itself, or bf16 widened (exactly) into this thread's buffer.
inline const float* f32_rows(const float* x, int64_t) { return x; }
inline const float* f32_rows(const uint16_t* x, int64_t n) {
  thread_local std::vector<float> buf;
  buf.resize(static_cast<size_t>(n));
  cpu::bf16_to_f32(x, buf.data(), n);
  return buf.data();
}

// The rows of x as given, and (for two or more rows) as fp32, widened once per product.
template <typename T>
struct FloatRows {
  const T* x;
  const float* xf;
};

// One row of x against R weight rows.
template <int R, typename T>
MV_AVX2 void float_row_avx2(const T* w, int64_t k, const T* xr, float* yr, int64_t n,
                            bool accumulate) {
  const int64_t kv = k / 16 * 16;
  __m256 acc[R][2];
  for (int j = 0; j < R; ++j) acc[j][0] = acc[j][1] = _mm256_setzero_ps();
  for (int64_t i = 0; i < kv; i += 16) {
    const __m256 x0 = load8(xr + i), x1 = load8(xr + i + 8);
    for (int j = 0; j < R; ++j)
      _mm_prefetch(reinterpret_cast<const char*>(w + (n + j + kPrefetchRows) * k + i), _MM_HINT_T0);
    for (int j = 0; j < R; ++j) {
      const T* wj = w + (n + j) * k + i;
      acc[j][0] = _mm256_fmadd_ps(load8(wj), x0, acc[j][0]);
      acc[j][1] = _mm256_fmadd_ps(load8(wj + 8), x1, acc[j][1]);
    }
  }
  for (int j = 0; j < R; ++j) {
    float s = sum8(_mm256_add_ps(acc[j][0], acc[j][1]));
    for (int64_t i = kv; i < k; ++i) s += widen(w[(n + j) * k + i]) * widen(xr[i]);
    yr[n + j] = accumulate ? yr[n + j] + s : s;
  }
}

// RX rows of x (fp32) against RW weight rows: each weight vector is loaded and widened once for
// all of them. Every (row, weight row) pair keeps the two sums and the order of float_row_avx2, so
// a row's result is bit for bit what it gets alone, whatever rows share its product.
template <int RW, int RX, typename T>
MV_AVX2 void float_rows_block_avx2(const T* w, int64_t k, const float* x, float* y, int64_t ldy,
                                   int64_t n, bool accumulate) {
  const int64_t kv = k / 16 * 16;
  __m256 acc[RX][RW][2];
  for (int r = 0; r < RX; ++r)
    for (int j = 0; j < RW; ++j) acc[r][j][0] = acc[r][j][1] = _mm256_setzero_ps();
  for (int64_t i = 0; i < kv; i += 16) {
    for (int j = 0; j < RW; ++j)
      _mm_prefetch(reinterpret_cast<const char*>(w + (n + j + kPrefetchRows) * k + i), _MM_HINT_T0);
    for (int j = 0; j < RW; ++j) {
      const T* wj = w + (n + j) * k + i;
      const __m256 w0 = load8(wj), w1 = load8(wj + 8);
      for (int r = 0; r < RX; ++r) {
        acc[r][j][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + r * k + i), acc[r][j][0]);
        acc[r][j][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + r * k + i + 8), acc[r][j][1]);
      }
    }
  }
  for (int j = 0; j < RW; ++j)
    for (int r = 0; r < RX; ++r) {
      float s = sum8(_mm256_add_ps(acc[r][j][0], acc[r][j][1]));
      for (int64_t i = kv; i < k; ++i) s += widen(w[(n + j) * k + i]) * x[r * k + i];
      float* yr = y + r * ldy + n + j;
      *yr = accumulate ? *yr + s : s;
    }
}

// f32 or bf16 weights and inputs (bf16 widened exactly to fp32; the products are exact in fp32):
// rows of x four at a time against one weight row, then two at a time against two weight rows
// (the sums stay in registers), a last odd row alone against all R.
template <int R, typename T>
MV_AVX2 void float_tile_avx2(const T* w, int64_t k, const FloatRows<T>* x, int64_t m, float* y,
                             int64_t ldy, int64_t n, bool accumulate) {
  int64_t r = 0;
  for (; r + 4 <= m; r += 4)
    for (int j = 0; j < R; ++j)
      float_rows_block_avx2<1, 4>(w, k, x->xf + r * k, y + r * ldy, ldy, n + j, accumulate);
  constexpr int P = R >= 2 ? 2 : 1;
  for (; r + 2 <= m; r += 2)
    for (int j = 0; j < R; j += P)
      float_rows_block_avx2<P, 2>(w, k, x->xf + r * k, y + r * ldy, ldy, n + j, accumulate);
  for (; r < m; ++r) float_row_avx2<R>(w, k, x->x + r * k, y + r * ldy, n, accumulate);
}

// Sixteen bytes of row r of x from column i, minus 128, as int16.
MV_AVX2 inline __m256i i8_x16(const U8Rows* x, int64_t k, int64_t r, int64_t i) {
  return _mm256_sub_epi16(
      _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x->q + r * k + i))),
      _mm256_set1_epi16(128));
}

// RX rows of x (from row r) against R rows of int8 weights, each weight vector widened once for
// all of them. The weights and the inputs' bytes minus 128 are both widened to int16: vpmaddwd
// sums pairs of products exactly in int32, so the dot product equals the portable loop's
// whatever rows share the product.
template <int R, int RX>
MV_AVX2 void i8_rows_block_avx2(const I8Rows* w, int64_t k, const U8Rows* x, int64_t r, float* y,
                                int64_t ldy, int64_t n, bool accumulate) {
  const int64_t kv = k / 16 * 16;
  __m256i acc[RX][R];
  for (int q = 0; q < RX; ++q)
    for (int j = 0; j < R; ++j) acc[q][j] = _mm256_setzero_si256();
  for (int64_t i = 0; i < kv; i += 16) {
    __m256i xv[RX];
    for (int q = 0; q < RX; ++q) xv[q] = i8_x16(x, k, r + q, i);
    for (int j = 0; j < R; ++j)
      _mm_prefetch(reinterpret_cast<const char*>(w->q + (n + j + kPrefetchRows) * k + i),
                   _MM_HINT_T0);
    for (int j = 0; j < R; ++j) {
      const __m256i wv = _mm256_cvtepi8_epi16(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(w->q + (n + j) * k + i)));
      for (int q = 0; q < RX; ++q)
        acc[q][j] = _mm256_add_epi32(acc[q][j], _mm256_madd_epi16(wv, xv[q]));
    }
  }
  for (int q = 0; q < RX; ++q) {
    const uint8_t* xr = x->q + (r + q) * k;
    float* yr = y + (r + q) * ldy + n;
    for (int j = 0; j < R; ++j) {
      int32_t dot = sum8(acc[q][j]);
      for (int64_t i = kv; i < k; ++i)
        dot += (static_cast<int32_t>(xr[i]) - 128) * w->q[(n + j) * k + i];
      const float s = w->scale[n + j] * x->scale[r + q] * static_cast<float>(dot);
      yr[j] = accumulate ? yr[j] + s : s;
    }
  }
}

// int8 weights: rows of x two at a time, an odd last row alone.
template <int R>
MV_AVX2 void i8_tile_avx2(const I8Rows* w, int64_t k, const U8Rows* x, int64_t m, float* y,
                          int64_t ldy, int64_t n, bool accumulate) {
  int64_t r = 0;
  for (; r + 2 <= m; r += 2) i8_rows_block_avx2<R, 2>(w, k, x, r, y, ldy, n, accumulate);
  for (; r < m; ++r) i8_rows_block_avx2<R, 1>(w, k, x, r, y, ldy, n, accumulate);
}

template <typename W, typename X, typename Tile4, typename Tile1>
void row_tiles(const W* w, int64_t k, const X* x, int64_t m, float* y, int64_t ldy, int64_t n0,
               int64_t n1, bool accumulate, Tile4 tile4, Tile1 tile1) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) tile4(w, k, x, m, y, ldy, n, accumulate);
  for (; n < n1; ++n) tile1(w, k, x, m, y, ldy, n, accumulate);
}

}  // namespace

bool gemv_kernel_runs(GemvKernel kernel, GemvWeights weights) {
  const CpuFeatures& f = cpu_features();
  switch (kernel) {
    case GemvKernel::portable:
      return true;
    case GemvKernel::avx2:
      return f.avx2_fma;
    case GemvKernel::avx512:
      return weights == GemvWeights::bf16 ? f.avx512_bf16
                                          : weights == GemvWeights::i8 && f.avx512_vnni;
  }
  return false;
}

GemvKernel gemv_kernel(GemvWeights weights) {
  // MINIVLM_GEMV_KERNEL caps the choice (to compare the loops on one machine).
  static const GemvKernel cap = [] {
    const char* env = std::getenv("MINIVLM_GEMV_KERNEL");
    if (env == nullptr || *env == 0) return GemvKernel::avx512;
    for (const GemvKernel k : {GemvKernel::portable, GemvKernel::avx2, GemvKernel::avx512})
      if (std::string_view(env) == gemv_kernel_name(k)) return k;
    MV_FAIL("MINIVLM_GEMV_KERNEL=", env, ": valid: portable, avx2, avx512");
  }();
  for (const GemvKernel k : {GemvKernel::avx512, GemvKernel::avx2})
    if (k <= cap && gemv_kernel_runs(k, weights)) return k;
  return GemvKernel::portable;
}

const char* gemv_kernel_name(GemvKernel kernel) {
  switch (kernel) {
    case GemvKernel::portable:
      return "portable";
    case GemvKernel::avx2:
      return "avx2";
    case GemvKernel::avx512:
      return "avx512";
  }
  return "?";
}

void gemv_rows(const float* w, int64_t k, const float* x, int64_t m, float* y, int64_t ldy,
               int64_t n0, int64_t n1, bool accumulate, std::optional<GemvKernel> kernel) {
  switch (kernel.value_or(gemv_kernel(GemvWeights::f32))) {
    case GemvKernel::avx2: {
      const FloatRows<float> rows{x, x};
      row_tiles(w, k, &rows, m, y, ldy, n0, n1, accumulate, float_tile_avx2<4, float>,
                float_tile_avx2<1, float>);
    } break;
    default:
      row_tiles(w, k, x, m, y, ldy, n0, n1, accumulate, f32_tile<4>, f32_tile<1>);
  }
}

void gemv_rows(const uint16_t* w, int64_t k, const uint16_t* x, int64_t m, float* y, int64_t ldy,
               int64_t n0, int64_t n1, bool accumulate, std::optional<GemvKernel> kernel) {
  switch (kernel.value_or(gemv_kernel(GemvWeights::bf16))) {
    case GemvKernel::avx512:
      row_tiles(w, k, x, m, y, ldy, n0, n1, accumulate, bf16_tile_avx512<4>, bf16_tile_avx512<1>);
      break;
    case GemvKernel::avx2: {
      const FloatRows<uint16_t> rows{x, m >= 2 ? f32_rows(x, m * k) : nullptr};
      row_tiles(w, k, &rows, m, y, ldy, n0, n1, accumulate, float_tile_avx2<4, uint16_t>,
                float_tile_avx2<1, uint16_t>);
      break;
    }
    case GemvKernel::portable:
      row_tiles(w, k, x, m, y, ldy, n0, n1, accumulate, bf16_tile_portable<4>,
                bf16_tile_portable<1>);
  }
}

void gemv_rows(const I8Rows& w, int64_t k, const U8Rows& x, int64_t m, float* y, int64_t ldy,
               int64_t n0, int64_t n1, bool accumulate, std::optional<GemvKernel> kernel) {
  switch (kernel.value_or(gemv_kernel(GemvWeights::i8))) {
    case GemvKernel::avx512:
      row_tiles(&w, k, &x, m, y, ldy, n0, n1, accumulate, i8_tile_avx512<4>, i8_tile_avx512<1>);
      break;
    case GemvKernel::avx2:
      row_tiles(&w, k, &x, m, y, ldy, n0, n1, accumulate, i8_tile_avx2<4>, i8_tile_avx2<1>);
      break;
    case GemvKernel::portable:
      row_tiles(&w, k, &x, m, y, ldy, n0, n1, accumulate, i8_tile_portable<4>, i8_tile_portable<1>);
  }
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

}  // namespace minivlm::cpu
