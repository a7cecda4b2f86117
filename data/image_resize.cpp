// Pillow-compatible BILINEAR, BICUBIC and LANCZOS resize (Pillow's libImaging/Resample.c
// semantics, bit for bit).
//
// Separable convolution: one pass per axis, through an 8-bit intermediate, in int32 vector lanes.
// For output sample i the filter is centred on the input coordinate c = (i + 0.5)·scale and, when
// shrinking, stretched by scale (so it averages, i.e. antialiases); taps are the input samples
// whose centres fall within the support, normalized to sum to 1, then quantized to 22-bit fixed
// point. Sums start at ½ (rounding) and are clamped to [0, 255]. The filters are Pillow's: the
// triangle 1 − |x| with support 1 (bilinear), the cubic kernel with a = −0.5 and support 2
// (bicubic) and the truncated sinc sinc(x)·sinc(x/3) on [−3, 3) with support 3 (lanczos, where
// sinc(x) = sin(πx)/(πx) and sinc(0) = 1, evaluated as Pillow does: x·M_PI, then sin(x)/x). No
// reducing prefilter: Image.resize applies one only with reducing_gap, which
// transformers leaves None.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "core/error.h"
#include "data/image.h"

// Coefficients must round exactly as in Pillow's build; a fused multiply-add changes the last
// bit of a tap and, rarely, the quantized coefficient.
#if defined(__clang__)
#pragma clang fp contract(off)
#else
#pragma GCC optimize("fp-contract=off")
#endif

namespace minivlm {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // 8-bit result, sign and overflow headroom
double bilinear(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}

double lanczos(double x) {
  if (-3.0 <= x && x < 3.0) return sinc(x) * sinc(x / 3);
  return 0.0;
}

struct Filter {
  double (*kernel)(double);
  double support;
};

Filter filter_of(Resample resample) {
  switch (resample) {
    case Resample::bilinear:
      return {bilinear, 1.0};
    case Resample::bicubic:
      return {bicubic, 2.0};
    case Resample::lanczos:
      return {lanczos, 3.0};
  }
  MV_FAIL("resize: unknown resample filter ", static_cast<int>(resample));
}

// Taps of a 1-D resampling from in_size to out_size samples.
struct Taps {
  int ksize = 0;                 // taps stored per output sample
  std::vector<int> first;        // [out] first input sample
  std::vector<int> count;        // [out] number of taps used
  std::vector<int32_t> weights;  // [out, ksize] fixed-point weights
};

Taps compute_taps(int in_size, int out_size, const Filter& filter) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = filter.support * filterscale;
  Taps t;
  t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.weights.assign(static_cast<size_t>(out_size) * t.ksize, 0);
  std::vector<double> k(t.ksize);
  for (int i = 0; i < out_size; ++i) {
    const double center = (i + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    const int lo = std::max(static_cast<int>(center - support + 0.5), 0);
    const int hi = std::min(static_cast<int>(center + support + 0.5), in_size);
    const int n = hi - lo;
    double total = 0.0;
    for (int x = 0; x < n; ++x) {
      k[x] = filter.kernel((x + lo - center + 0.5) * ss);
      total += k[x];
    }
    int32_t* w = &t.weights[static_cast<size_t>(i) * t.ksize];
    for (int x = 0; x < n; ++x) {
      const double v = total != 0.0 ? k[x] / total : k[x];
      w[x] = static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits)
                                        : 0.5 + v * (1 << kPrecisionBits));
    }
    t.first[i] = lo;
    t.count[i] = n;
  }
  return t;
}

uint8_t clip8(int32_t sum) {
  return static_cast<uint8_t>(std::clamp(sum >> kPrecisionBits, 0, 255));
}

constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);

// Eight int32 lanes (one AVX2 register), a widening load of 8 bytes and a saturating store of the
// eight sums. With AVX2 these are two or four instructions; otherwise plain loops.
using I32x8 = int32_t __attribute__((vector_size(32)));
#if defined(__AVX2__)
I32x8 load8(const uint8_t* p) {
  return reinterpret_cast<I32x8>(
      _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
void store_clipped(const I32x8& acc, uint8_t* out) {
  __m256i v = _mm256_srai_epi32(reinterpret_cast<__m256i>(acc), kPrecisionBits);
  v = _mm256_min_epi32(_mm256_max_epi32(v, _mm256_setzero_si256()), _mm256_set1_epi32(255));
  // Byte 0 of each int32 to the low dword of its 128-bit half, then the two dwords together.
  const __m256i bytes = _mm256_shuffle_epi8(
      v, _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12,
                          -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
  const __m256i packed =
      _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(packed));
}
#else
I32x8 load8(const uint8_t* p) {
  I32x8 v;
  for (int j = 0; j < 8; ++j) v[j] = p[j];
  return v;
}
void store_clipped(const I32x8& acc, uint8_t* out) {
  for (int j = 0; j < 8; ++j) out[j] = clip8(acc[j]);
}
#endif

// Every sum below is Pillow's per-pixel sum Σ in·w + ½ over the same taps in another order; integer
// sums do not depend on the order.

// Resamples `in` vertically with taps `t` whose input rows are offset by -row0. Each output row
// is computed in runs of 32 bytes whose sums stay in registers across the taps.
RgbImage resample_vertical(const RgbImage& in, const Taps& t, int row0, int out_height) {
  const size_t row_len = static_cast<size_t>(in.width) * 3;
  RgbImage out{in.width, out_height, std::vector<uint8_t>(row_len * out_height)};
  constexpr size_t kRun = 32;
  for (int y = 0; y < out_height; ++y) {
    const int32_t* w = &t.weights[static_cast<size_t>(y) * t.ksize];
    const int n = t.count[y];
    const uint8_t* src = &in.pixels[static_cast<size_t>(t.first[y] - row0) * row_len];
    uint8_t* dst = &out.pixels[static_cast<size_t>(y) * row_len];
    size_t x = 0;
    for (; x + kRun <= row_len; x += kRun) {
      I32x8 a0 = I32x8{} + kHalf, a1 = a0, a2 = a0, a3 = a0;
      const uint8_t* s = src + x;
      for (int k = 0; k < n; ++k, s += row_len) {
        const int32_t wk = w[k];
        a0 += load8(s) * wk, a1 += load8(s + 8) * wk;
        a2 += load8(s + 16) * wk, a3 += load8(s + 24) * wk;
      }
      store_clipped(a0, dst + x), store_clipped(a1, dst + x + 8);
      store_clipped(a2, dst + x + 16), store_clipped(a3, dst + x + 24);
    }
    for (; x < row_len; ++x) {
      int32_t acc = kHalf;
      for (int k = 0; k < n; ++k) acc += src[static_cast<size_t>(k) * row_len + x] * w[k];
      dst[x] = clip8(acc);
    }
  }
  return out;
}

// Resamples rows [row0, row0 + rows) of `in` horizontally to `out_width`, eight rows at a time:
// their pixels are interleaved into a buffer of 24 bytes per input column (row r's R, G, B at 3r),
// so that the taps of one output column run over whole 24-byte groups, with the eight rows' sums
// in registers; the sums are then written back to the eight rows.
RgbImage resample_horizontal(const RgbImage& in, int row0, int rows, int out_width, const Taps& t) {
  constexpr int kRows = 8, kGroup = 3 * kRows;
  const size_t in_len = static_cast<size_t>(in.width) * 3, out_len = size_t{3} * out_width;
  RgbImage out{out_width, rows, std::vector<uint8_t>(out_len * rows)};
  std::vector<uint8_t> buf(static_cast<size_t>(in.width) * kGroup);
  for (int r0 = 0; r0 < rows; r0 += kRows) {
    const int nr = std::min(kRows, rows - r0);  // a last block of fewer rows leaves some zero
    if (nr < kRows) std::fill(buf.begin(), buf.end(), 0);
    for (int r = 0; r < nr; ++r) {
      const uint8_t* src = &in.pixels[static_cast<size_t>(row0 + r0 + r) * in_len];
      uint8_t* b = buf.data() + 3 * r;
      for (int x = 0; x < in.width; ++x, src += 3, b += kGroup)
        b[0] = src[0], b[1] = src[1], b[2] = src[2];
    }
    uint8_t* dst = &out.pixels[static_cast<size_t>(r0) * out_len];
    for (int x = 0; x < out_width; ++x) {
      const int32_t* w = &t.weights[static_cast<size_t>(x) * t.ksize];
      const int n = t.count[x];
      const uint8_t* s = buf.data() + static_cast<size_t>(t.first[x]) * kGroup;
      I32x8 a0 = I32x8{} + kHalf, a1 = a0, a2 = a0;
      for (int k = 0; k < n; ++k, s += kGroup) {
        const int32_t wk = w[k];
        a0 += load8(s) * wk, a1 += load8(s + 8) * wk, a2 += load8(s + 16) * wk;
      }
      uint8_t px[kGroup];
      store_clipped(a0, px), store_clipped(a1, px + 8), store_clipped(a2, px + 16);
      for (int r = 0; r < nr; ++r) {
        uint8_t* o = dst + static_cast<size_t>(r) * out_len + 3 * static_cast<size_t>(x);
        o[0] = px[3 * r], o[1] = px[3 * r + 1], o[2] = px[3 * r + 2];
      }
    }
  }
  return out;
}

}  // namespace

RgbImage resize(const RgbImage& img, int out_width, int out_height, Resample resample) {
  MV_CHECK(img.width > 0 && img.height > 0 &&
               img.pixels.size() == static_cast<size_t>(img.width) * img.height * 3,
           "resize: invalid ", img.width, "x", img.height, " image with ", img.pixels.size(),
           " bytes");
  MV_CHECK(out_width > 0 && out_height > 0, "resize: invalid target size ", out_width, "x",
           out_height);
  if (out_width == img.width && out_height == img.height) return img;
  const Filter filter = filter_of(resample);
  const Taps vertical = compute_taps(img.height, out_height, filter);
  if (out_width == img.width) return resample_vertical(img, vertical, 0, out_height);
  // Pillow (13) runs the vertical pass first when the image shrinks vertically by more than twice
  // what it loses in width; the order changes the rounding of the 8-bit intermediate.
  if (out_height < img.height && 2 * (img.width - out_width) < img.height - out_height) {
    const RgbImage tall = resample_vertical(img, vertical, 0, out_height);
    return resample_horizontal(tall, 0, out_height, out_width,
                               compute_taps(img.width, out_width, filter));
  }
  // Only the input rows the vertical pass reads go through the horizontal pass.
  const int row0 = vertical.first.front();
  const int row_end = vertical.first.back() + vertical.count.back();
  RgbImage wide = resample_horizontal(img, row0, row_end - row0, out_width,
                                      compute_taps(img.width, out_width, filter));
  if (out_height == img.height) return wide;
  return resample_vertical(wide, vertical, row0, out_height);
}

RgbImage resize_bicubic(const RgbImage& img, int out_width, int out_height) {
  return resize(img, out_width, out_height, Resample::bicubic);
}

Resample resample_from_name(const std::string& name) {
  if (name == "bilinear") return Resample::bilinear;
  if (name == "bicubic") return Resample::bicubic;
  if (name == "lanczos") return Resample::lanczos;
  MV_FAIL("resample filter must be bilinear, bicubic or lanczos, got '", name, "'");
}

const char* resample_name(Resample resample) {
  switch (resample) {
    case Resample::bilinear:
      return "bilinear";
    case Resample::bicubic:
      return "bicubic";
    case Resample::lanczos:
      return "lanczos";
  }
  return "?";
}

}  // namespace minivlm
