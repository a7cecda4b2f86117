#include "data/image_jpeg.h"

#include <algorithm>

#include "core/error.h"

namespace minivlm::jpeg {
namespace {

uint8_t clamp_u8(int v) { return static_cast<uint8_t>(std::clamp(v, 0, 255)); }

// ---- IDCT -----------------------------------------------------------------------------------
// The Loeffler–Ligtenberg–Moschytz 1-D IDCT (12 multiplies) applied to columns, then rows, with
// 13-bit fixed-point constants; the column pass keeps 2 extra bits. This is libjpeg's "islow".
// Arithmetic is modulo 2^32, as in libjpeg-turbo's SIMD code: exact for any valid 8-bit JPEG, and
// unsigned so the loops over 8 independent lanes vectorize without signed-overflow hazards.
constexpr int kConstBits = 13;
constexpr int kPass1Bits = 2;
constexpr uint32_t kFix0_298631336 = 2446;
constexpr uint32_t kFix0_390180644 = 3196;
constexpr uint32_t kFix0_541196100 = 4433;
constexpr uint32_t kFix0_765366865 = 6270;
constexpr uint32_t kFix0_899976223 = 7373;
constexpr uint32_t kFix1_175875602 = 9633;
constexpr uint32_t kFix1_501321110 = 12299;
constexpr uint32_t kFix1_847759065 = 15137;
constexpr uint32_t kFix1_961570560 = 16069;
constexpr uint32_t kFix2_053119869 = 16819;
constexpr uint32_t kFix2_562915447 = 20995;
constexpr uint32_t kFix3_072711026 = 25172;

// Rounding right shift of a two's-complement value held in a uint32_t.
int32_t descale(uint32_t x, int n) {
  return static_cast<int32_t>(x + (uint32_t{1} << (n - 1))) >> n;
}

// 1-D IDCT of 8 independent lanes: in[k][lane] is input k of that lane; out[k][lane] likewise,
// before descaling.
void idct_lanes(const uint32_t in[8][8], uint32_t out[8][8]) {
  for (int l = 0; l < 8; ++l) {
    // Even part.
    const uint32_t e1 = (in[2][l] + in[6][l]) * kFix0_541196100;
    const uint32_t e2 = e1 - in[6][l] * kFix1_847759065;
    const uint32_t e3 = e1 + in[2][l] * kFix0_765366865;
    const uint32_t e0 = (in[0][l] + in[4][l]) << kConstBits;
    const uint32_t e4 = (in[0][l] - in[4][l]) << kConstBits;
    const uint32_t tmp10 = e0 + e3, tmp13 = e0 - e3, tmp11 = e4 + e2, tmp12 = e4 - e2;
    // Odd part.
    const uint32_t o0 = in[7][l], o1 = in[5][l], o2 = in[3][l], o3 = in[1][l];
    const uint32_t z5 = (o0 + o2 + o1 + o3) * kFix1_175875602;
    const uint32_t z1 = (o0 + o3) * (0u - kFix0_899976223);
    const uint32_t z2 = (o1 + o2) * (0u - kFix2_562915447);
    const uint32_t z3 = (o0 + o2) * (0u - kFix1_961570560) + z5;
    const uint32_t z4 = (o1 + o3) * (0u - kFix0_390180644) + z5;
    const uint32_t t0 = o0 * kFix0_298631336 + z1 + z3;
    const uint32_t t1 = o1 * kFix2_053119869 + z2 + z4;
    const uint32_t t2 = o2 * kFix3_072711026 + z2 + z3;
    const uint32_t t3 = o3 * kFix1_501321110 + z1 + z4;
    out[0][l] = tmp10 + t3;
    out[7][l] = tmp10 - t3;
    out[1][l] = tmp11 + t2;
    out[6][l] = tmp11 - t2;
    out[2][l] = tmp12 + t1;
    out[5][l] = tmp12 - t1;
    out[3][l] = tmp13 + t0;
    out[4][l] = tmp13 - t0;
  }
}

// ---- upsampling -----------------------------------------------------------------------------
// libjpeg's "fancy" upsamplers interpolate linearly between sample centers (weights 3/4, 1/4 per
// axis) and alternate the rounding bias between neighbouring outputs (an ordered dither); edge
// rows are replicated. Widths of 2 or less fall back to replication, as in libjpeg.

const uint8_t* row(const Plane& p, int y) {
  return p.data + static_cast<size_t>(std::clamp(y, 0, p.height - 1)) * p.stride;
}

// Fills `out` (2·width samples) from one input row, horizontally 2×.
void h2_fancy_row(const uint8_t* in, int width, uint8_t* out) {
  out[0] = in[0];
  out[1] = static_cast<uint8_t>((in[0] * 3 + in[1] + 2) >> 2);
  for (int i = 1; i < width - 1; ++i) {
    const int v = in[i] * 3;
    out[2 * i] = static_cast<uint8_t>((v + in[i - 1] + 1) >> 2);
    out[2 * i + 1] = static_cast<uint8_t>((v + in[i + 1] + 2) >> 2);
  }
  const int last = width - 1;
  out[2 * last] = static_cast<uint8_t>((in[last] * 3 + in[last - 1] + 1) >> 2);
  out[2 * last + 1] = in[last];
}

// Fills `out` (2·width samples) for an output row whose nearest input row is `near` and whose
// next-nearest is `far`: 2× in both directions.
void h2v2_fancy_row(const uint8_t* near, const uint8_t* far, int width, uint8_t* out) {
  int last = near[0] * 3 + far[0];
  int cur = last;
  int next = near[1] * 3 + far[1];
  out[0] = static_cast<uint8_t>((cur * 4 + 8) >> 4);
  out[1] = static_cast<uint8_t>((cur * 3 + next + 7) >> 4);
  for (int i = 1; i < width - 1; ++i) {
    last = cur;
    cur = next;
    next = near[i + 1] * 3 + far[i + 1];
    out[2 * i] = static_cast<uint8_t>((cur * 3 + last + 8) >> 4);
    out[2 * i + 1] = static_cast<uint8_t>((cur * 3 + next + 7) >> 4);
  }
  last = cur;
  cur = next;
  const int i = width - 1;
  out[2 * i] = static_cast<uint8_t>((cur * 3 + last + 8) >> 4);
  out[2 * i + 1] = static_cast<uint8_t>((cur * 4 + 7) >> 4);
}

// ---- color conversion -----------------------------------------------------------------------
// R = Y + 1.402·Cr', G = Y − 0.34414·Cb' − 0.71414·Cr', B = Y + 1.772·Cb' (Cx' = Cx − 128), in
// libjpeg's 16-bit fixed point: its tables hold exactly these rounded products.
constexpr int kScaleBits = 16;
constexpr int kHalf = 1 << (kScaleBits - 1);
constexpr int fix(double x) { return static_cast<int>(x * (1 << kScaleBits) + 0.5); }

}  // namespace

void idct_islow(uint8_t* out, int out_stride, short coef[64]) {
  uint32_t in[8][8], res[8][8];
  // Columns (lanes = columns): keep kPass1Bits extra bits of precision.
  for (int k = 0; k < 8; ++k)
    for (int c = 0; c < 8; ++c) in[k][c] = static_cast<uint32_t>(int32_t{coef[k * 8 + c]});
  idct_lanes(in, res);
  // Rows (lanes = rows): the transposed column results.
  for (int k = 0; k < 8; ++k)
    for (int y = 0; y < 8; ++y)
      in[k][y] = static_cast<uint32_t>(descale(res[y][k], kConstBits - kPass1Bits));
  idct_lanes(in, res);
  // Remove the fixed-point scale, the pass-1 bits and the factor 8 of the 2-D transform; re-add
  // the level shift and saturate as libjpeg-turbo's SIMD code does.
  for (int y = 0; y < 8; ++y) {
    uint8_t* o = out + static_cast<ptrdiff_t>(y) * out_stride;
    for (int x = 0; x < 8; ++x)
      o[x] = clamp_u8(descale(res[x][y], kConstBits + kPass1Bits + 3) + 128);
  }
}

std::vector<uint8_t> upsample(const Plane& p, int h_factor, int v_factor, int out_width,
                              int out_height) {
  MV_CHECK(h_factor >= 1 && v_factor >= 1, "JPEG component with sampling ratio ", h_factor, "x",
           v_factor);
  MV_CHECK(static_cast<int64_t>(p.width) * h_factor >= out_width &&
               static_cast<int64_t>(p.height) * v_factor >= out_height,
           "JPEG component of ", p.width, "x", p.height, " samples does not cover ", out_width, "x",
           out_height, " pixels at ratio ", h_factor, "x", v_factor);
  std::vector<uint8_t> out(static_cast<size_t>(out_width) * out_height);
  std::vector<uint8_t> wide(static_cast<size_t>(p.width) * h_factor);  // one upsampled row
  const bool fancy_h2 = h_factor == 2 && p.width > 2;
  for (int y = 0; y < out_height; ++y) {
    const uint8_t* src;
    if (h_factor == 1 && v_factor == 1) {
      src = row(p, y);
    } else if (fancy_h2 && v_factor == 1) {
      h2_fancy_row(row(p, y), p.width, wide.data());
      src = wide.data();
    } else if (h_factor == 2 && v_factor == 2 && fancy_h2) {
      const int near = y / 2, far = (y % 2 == 0) ? near - 1 : near + 1;
      h2v2_fancy_row(row(p, near), row(p, far), p.width, wide.data());
      src = wide.data();
    } else if (h_factor == 1 && v_factor == 2) {
      const int near = y / 2, far = (y % 2 == 0) ? near - 1 : near + 1;
      const int bias = (y % 2 == 0) ? 1 : 2;
      const uint8_t *a = row(p, near), *b = row(p, far);
      for (int x = 0; x < p.width; ++x)
        wide[x] = static_cast<uint8_t>((a[x] * 3 + b[x] + bias) >> 2);
      src = wide.data();
    } else {  // any other integral ratio, and narrow planes: replicate samples
      const uint8_t* in = row(p, y / v_factor);
      for (int x = 0; x < out_width; ++x) wide[x] = in[x / h_factor];
      src = wide.data();
    }
    std::copy(src, src + out_width, out.begin() + static_cast<ptrdiff_t>(y) * out_width);
  }
  return out;
}

void ycc_to_rgb(const uint8_t* y, const uint8_t* cb, const uint8_t* cr, int64_t n, uint8_t* rgb) {
  for (int64_t i = 0; i < n; ++i) {
    const int l = y[i], b = cb[i] - 128, r = cr[i] - 128;
    rgb[3 * i + 0] = clamp_u8(l + ((fix(1.40200) * r + kHalf) >> kScaleBits));
    rgb[3 * i + 1] = clamp_u8(l + ((-fix(0.34414) * b - fix(0.71414) * r + kHalf) >> kScaleBits));
    rgb[3 * i + 2] = clamp_u8(l + ((fix(1.77200) * b + kHalf) >> kScaleBits));
  }
}

}  // namespace minivlm::jpeg
