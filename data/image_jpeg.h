// JPEG pixel arithmetic bit-compatible with libjpeg(-turbo), the decoder behind Pillow.
//
// stb_image parses JPEG streams and entropy-decodes the DCT coefficients exactly, but its IDCT,
// chroma upsampling and YCbCr→RGB conversion round differently from libjpeg (up to ±3 per channel
// on real photos). Images preprocessed here must equal what Pillow / transformers feed the model,
// so these kernels redo libjpeg's integer formulas with its default settings: the accurate integer
// IDCT ("islow"), "fancy" triangle-filter upsampling, and its fixed-point color conversion.
#pragma once
#include <cstdint>
#include <vector>

namespace minivlm::jpeg {

// Inverse DCT of one 8×8 block of dequantized coefficients in natural (row-major) order, written
// as 8 rows of 8 samples `out_stride` bytes apart. Same signature as stb_image's IDCT kernel.
void idct_islow(uint8_t* out, int out_stride, short coef[64]);

// One decoded component: `width`×`height` valid samples, rows `stride` bytes apart.
struct Plane {
  const uint8_t* data = nullptr;
  int width = 0, height = 0, stride = 0;
};

// Upsamples a component subsampled by integer factors (h_factor, v_factor) to the full image size
// out_width × out_height. Throws if the factors are not ones libjpeg accepts (integral ratios).
std::vector<uint8_t> upsample(const Plane& plane, int h_factor, int v_factor, int out_width,
                              int out_height);

// Full-resolution Y, Cb, Cr planes (n samples each) → interleaved RGB (3n bytes).
void ycc_to_rgb(const uint8_t* y, const uint8_t* cb, const uint8_t* cr, int64_t n, uint8_t* rgb);

}  // namespace minivlm::jpeg
