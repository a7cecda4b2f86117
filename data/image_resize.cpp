// Pillow-compatible BILINEAR, BICUBIC and LANCZOS resize (Pillow's libImaging/Resample.c
// semantics, bit for bit).
//
// Separable convolution: one pass per axis, through an 8-bit intermediate.
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
#include <string>
#include <vector>

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

// Resamples `in` vertically with taps `t` whose input rows are offset by -row0.
RgbImage resample_vertical(const RgbImage& in, const Taps& t, int row0, int out_height) {
  const size_t row_len = static_cast<size_t>(in.width) * 3;
  RgbImage out{in.width, out_height, std::vector<uint8_t>(row_len * out_height)};
  std::vector<int32_t> acc(row_len);
  for (int y = 0; y < out_height; ++y) {
    // Row-wise accumulation: integer sums are order-independent, so this equals Pillow's
    // per-pixel loop and streams through memory.
    std::fill(acc.begin(), acc.end(), kHalf);
    const int32_t* w = &t.weights[static_cast<size_t>(y) * t.ksize];
    for (int k = 0; k < t.count[y]; ++k) {
      const uint8_t* src = &in.pixels[static_cast<size_t>(t.first[y] - row0 + k) * row_len];
      const int32_t wk = w[k];
      for (size_t i = 0; i < row_len; ++i) acc[i] += src[i] * wk;
    }
    uint8_t* dst = &out.pixels[static_cast<size_t>(y) * row_len];
    for (size_t i = 0; i < row_len; ++i) dst[i] = clip8(acc[i]);
  }
  return out;
}

// Pixel transpose of rows [row0, row0 + rows) of `in`: the result is `rows` wide, in.width tall.
RgbImage transpose_rows(const RgbImage& in, int row0, int rows) {
  RgbImage out{rows, in.width, std::vector<uint8_t>(static_cast<size_t>(rows) * in.width * 3)};
  constexpr int kBlock = 32;  // tiles that stay in L1 on both sides
  for (int y0 = 0; y0 < rows; y0 += kBlock)
    for (int x0 = 0; x0 < in.width; x0 += kBlock)
      for (int y = y0; y < std::min(y0 + kBlock, rows); ++y) {
        const uint8_t* src = &in.pixels[static_cast<size_t>(row0 + y) * in.width * 3];
        for (int x = x0; x < std::min(x0 + kBlock, in.width); ++x) {
          uint8_t* dst = &out.pixels[(static_cast<size_t>(x) * rows + y) * 3];
          dst[0] = src[3 * x], dst[1] = src[3 * x + 1], dst[2] = src[3 * x + 2];
        }
      }
  return out;
}

// Resamples rows [row0, row0 + rows) of `in` horizontally to `out_width`. Done as the vertical
// pass of the transposed image: that loop runs over whole rows and vectorizes, while the integer
// sums are the same as Pillow's per-pixel horizontal loop.
RgbImage resample_horizontal(const RgbImage& in, int row0, int rows, int out_width,
                             const Filter& filter) {
  const RgbImage columns = transpose_rows(in, row0, rows);
  const RgbImage resized =
      resample_vertical(columns, compute_taps(in.width, out_width, filter), 0, out_width);
  return transpose_rows(resized, 0, out_width);
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
    return resample_horizontal(tall, 0, out_height, out_width, filter);
  }
  // Only the input rows the vertical pass reads go through the horizontal pass.
  const int row0 = vertical.first.front();
  const int row_end = vertical.first.back() + vertical.count.back();
  RgbImage wide = resample_horizontal(img, row0, row_end - row0, out_width, filter);
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
