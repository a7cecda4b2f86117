// CLIPImageProcessor geometry and normalization (SPEC §2).
#include <algorithm>

#include "core/error.h"
#include "data/image.h"

namespace minivlm {

std::array<int, 2> shortest_edge_size(int width, int height, int size) {
  MV_CHECK(width > 0 && height > 0 && size > 0, "shortest_edge_size: invalid image ", width, "x",
           height, " or size ", size);
  const bool portrait = width <= height;
  const int short_edge = portrait ? width : height, long_edge = portrait ? height : width;
  // Python's int(size * long / short): an exact product, a correctly rounded division, truncation.
  const int resized_long = static_cast<int>(static_cast<double>(int64_t{size} * long_edge) /
                                            static_cast<double>(short_edge));
  return portrait ? std::array<int, 2>{size, resized_long} : std::array<int, 2>{resized_long, size};
}

RgbImage resize_shortest_edge(const RgbImage& img, int size) {
  const auto [width, height] = shortest_edge_size(img.width, img.height, size);
  return resize_bicubic(img, width, height);
}

RgbImage center_crop(const RgbImage& img, int size) {
  MV_CHECK(size > 0, "center_crop: invalid size ", size);
  // Floor division, so a window larger than the image is centred with the odd pixel of padding
  // at the top / left, as transformers pads.
  auto floor_half = [](int d) { return d >= 0 ? d / 2 : -((-d + 1) / 2); };
  const int top = floor_half(img.height - size), left = floor_half(img.width - size);
  RgbImage out{size, size, std::vector<uint8_t>(static_cast<size_t>(size) * size * 3, 0)};
  const int x0 = std::max(0, -left), x1 = std::min(size, img.width - left);
  for (int y = std::max(0, -top); x0 < x1 && y < std::min(size, img.height - top); ++y) {
    const uint8_t* src = &img.pixels[(static_cast<size_t>(y + top) * img.width + x0 + left) * 3];
    std::copy(src, src + static_cast<size_t>(x1 - x0) * 3,
              &out.pixels[(static_cast<size_t>(y) * size + x0) * 3]);
  }
  return out;
}

void normalize_planar_window(const RgbImage& img, int x0, int y0, int width, int height,
                             const ClipNorm& norm, float* out) {
  MV_CHECK(img.pixels.size() == size_t{3} * img.width * img.height, "normalize_planar: invalid ",
           img.width, "x", img.height, " image with ", img.pixels.size(), " bytes");
  MV_CHECK(x0 >= 0 && y0 >= 0 && width >= 0 && height >= 0 && x0 + width <= img.width &&
               y0 + height <= img.height,
           "normalize_planar: window ", width, "x", height, " at (", x0, ", ", y0, ") outside the ",
           img.width, "x", img.height, " image");
  float lut[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v)
      lut[c][v] = (static_cast<float>(v * (1.0 / 255.0)) - norm.mean[c]) / norm.std[c];
  const size_t plane = static_cast<size_t>(width) * height;
  float *r = out, *g = out + plane, *b = out + 2 * plane;
  for (int y = 0; y < height; ++y) {
    const uint8_t* px = &img.pixels[(static_cast<size_t>(y0 + y) * img.width + x0) * 3];
    for (int x = 0; x < width; ++x, px += 3) {
      *r++ = lut[0][px[0]];
      *g++ = lut[1][px[1]];
      *b++ = lut[2][px[2]];
    }
  }
}

std::vector<float> normalize_planar(const RgbImage& img, const ClipNorm& norm) {
  std::vector<float> out(size_t{3} * img.width * img.height);  // [3, height, width]
  normalize_planar_window(img, 0, 0, img.width, img.height, norm, out.data());
  return out;
}

std::vector<float> clip_preprocess(const RgbImage& img, int size, const ClipNorm& norm) {
  return normalize_planar(center_crop(resize_shortest_edge(img, size), size), norm);
}

}  // namespace minivlm
