// CLIP preprocessing (SPEC §2) against transformers' CLIPImageProcessor (Pillow backend).
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "data/image.h"
#include "test_image_goldens.h"

namespace minivlm {
namespace {

using image_test::golden_f32;
using image_test::golden_u8;
using image_test::goldens;
using image_test::source_path;

TEST(ClipPreprocess, ShortestEdgeSizeMatchesTransformers) {
  for (const auto& c : goldens()["shortest_edge"]) {
    const auto [w, h] = shortest_edge_size(c["width"], c["height"], c["size"]);
    EXPECT_EQ(w, c["out_width"].get<int>()) << c.dump();
    EXPECT_EQ(h, c["out_height"].get<int>()) << c.dump();
  }
}

TEST(ClipPreprocess, CenterCropMatchesTransformersIncludingPadding) {
  for (const auto& c : goldens()["center_crop"]) {
    const int s = c["size"];
    const RgbImage out = center_crop(load_rgb_image(source_path(c["input"])), s);
    ASSERT_EQ(out.width, s);
    ASSERT_EQ(out.height, s);
    EXPECT_EQ(out.pixels, golden_u8(c)) << "size " << s;
  }
}

TEST(ClipPreprocess, MatchesClipImageProcessor) {
  double max_err = 0;
  int64_t values = 0, exact = 0;
  for (const auto& c : goldens()["clip"]) {
    const std::string input = c["input"];
    const int s = c["size"], stride = c["stride"];
    SCOPED_TRACE(input + " size " + std::to_string(s));
    const std::vector<float> t = clip_preprocess(load_rgb_image(source_path(input)), s);
    ASSERT_EQ(t.size(), size_t(3) * s * s);
    const std::vector<float> want = golden_f32(c);
    size_t k = 0;
    for (int ch = 0; ch < 3; ++ch) {
      double sum = 0;
      for (int i = 0; i < s * s; ++i) sum += t[size_t(ch) * s * s + i];
      EXPECT_NEAR(sum, c["channel_sums"][ch].get<double>(), 1e-3 * s * s) << "channel " << ch;
      for (int y = 0; y < s; y += stride)
        for (int x = 0; x < s; x += stride, ++k) {
          ASSERT_LT(k, want.size());
          const float got = t[(size_t(ch) * s + y) * s + x];
          const double err = std::fabs(double(got) - double(want[k]));
          EXPECT_LE(err, 1e-2) << "channel " << ch << " y " << y << " x " << x;
          max_err = std::max(max_err, err);
          exact += got == want[k];
          ++values;
        }
    }
    EXPECT_EQ(k, want.size());
  }
  std::printf("[ stats    ] clip vs CLIPImageProcessor: %lld values, %lld exact, max |err| %.3g\n",
              static_cast<long long>(values), static_cast<long long>(exact), max_err);
}

// An s×s image is not resampled: the tensor is exactly the normalized input pixels.
TEST(ClipPreprocess, SquareImageSkipsResize) {
  const RgbImage img = resize_bicubic(
      load_rgb_image(source_path("tests/goldens/image/inputs/photo_160x120.png")), 32, 32);
  EXPECT_EQ(resize_shortest_edge(img, 32).pixels, img.pixels);
  const ClipNorm norm;
  const std::vector<float> t = clip_preprocess(img, 32, norm);
  for (int ch = 0; ch < 3; ++ch)
    for (int i = 0; i < 32 * 32; ++i) {
      const float x = static_cast<float>(img.pixels[size_t(i) * 3 + ch] * (1.0 / 255.0));
      ASSERT_EQ(t[size_t(ch) * 32 * 32 + i], (x - norm.mean[ch]) / norm.std[ch]) << i;
    }
}

TEST(ClipPreprocess, OutputIsPlanarChannelMajor) {
  RgbImage img{5, 7, {}};
  for (int i = 0; i < 35; ++i) img.pixels.insert(img.pixels.end(), {255, 0, 51});
  const std::vector<float> t = clip_preprocess(img, 4);
  const float want[3] = {(1.0f - 0.48145466f) / 0.26862954f, -0.4578275f / 0.26130258f,
                         (0.2f - 0.40821073f) / 0.27577711f};
  for (int ch = 0; ch < 3; ++ch)
    for (int i = 0; i < 16; ++i) EXPECT_NEAR(t[ch * 16 + i], want[ch], 1e-5) << ch << " " << i;
}

TEST(ClipPreprocess, RejectsInvalidSize) {
  const RgbImage img{2, 2, std::vector<uint8_t>(12, 0)};
  EXPECT_THROW(clip_preprocess(img, 0), Error);
  EXPECT_THROW(center_crop(img, -3), Error);
}

}  // namespace
}  // namespace minivlm
