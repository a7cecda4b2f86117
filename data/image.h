// Image loading and CLIP preprocessing (SPEC §2).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace minivlm {

// 8-bit RGB, row-major [height][width][3].
struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;
};

// Decodes JPEG/PNG/BMP/GIF (first frame) to RGB, compositing alpha over white.
// Throws minivlm::Error naming the path and the decoder's reason.
RgbImage load_rgb_image(const std::string& path);
RgbImage decode_rgb_image(const uint8_t* bytes, size_t n, const std::string& what);

// Pillow-compatible BICUBIC resize (antialiased when shrinking).
RgbImage resize_bicubic(const RgbImage& img, int out_width, int out_height);
// Shortest edge → size, keeping the aspect ratio as CLIPImageProcessor does.
RgbImage resize_shortest_edge(const RgbImage& img, int size);
RgbImage center_crop(const RgbImage& img, int size);

struct ClipNorm {
  std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};
};
// resize_shortest_edge → center_crop → x/255 → (x − mean)/std; returns [3, size, size] planar.
std::vector<float> clip_preprocess(const RgbImage& img, int size, const ClipNorm& norm);

}  // namespace minivlm
