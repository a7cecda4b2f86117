// Pillow-compatible BICUBIC resize (SPEC §2) against Pillow's Image.resize.
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "data/image.h"
#include "test_image_goldens.h"

namespace minivlm {
namespace {

using image_test::golden_u8;
using image_test::goldens;
using image_test::source_path;

TEST(ImageResize, MatchesPillowBicubicWithinOne) {
  image_test::U8Stats stats;
  int cases = 0;
  for (const auto& c : goldens()["resize"]) {
    const std::string input = c["input"];
    const int w = c["width"], h = c["height"];
    SCOPED_TRACE(input + " -> " + std::to_string(w) + "x" + std::to_string(h));
    const RgbImage out = resize_bicubic(load_rgb_image(source_path(input)), w, h);
    ASSERT_EQ(out.width, w);
    ASSERT_EQ(out.height, h);
    stats.add(out.pixels, golden_u8(c));
    ++cases;
  }
  stats.report("resize vs Pillow");
  EXPECT_GE(cases, 40);
}

RgbImage random_image(int w, int h, unsigned seed) {
  std::mt19937 rng(seed);
  RgbImage img{w, h, std::vector<uint8_t>(size_t(w) * h * 3)};
  for (auto& p : img.pixels) p = static_cast<uint8_t>(rng());
  return img;
}

TEST(ImageResize, SameSizeIsBitExactCopy) {
  const RgbImage img = random_image(23, 17, 1);
  EXPECT_EQ(resize_bicubic(img, 23, 17).pixels, img.pixels);
}

// One axis unchanged: only the other axis is filtered, so an image constant along the resized
// axis keeps its values exactly (the normalized taps sum to one in fixed point, up to rounding).
TEST(ImageResize, SingleAxisResizeKeepsConstantRows) {
  RgbImage img{9, 4, std::vector<uint8_t>(9 * 4 * 3)};
  for (int y = 0; y < 4; ++y)
    for (int i = 0; i < 27; ++i) img.pixels[y * 27 + i] = static_cast<uint8_t>(40 * y + 7);
  const RgbImage out = resize_bicubic(img, 5, 4);
  for (int y = 0; y < 4; ++y)
    for (int i = 0; i < 15; ++i) EXPECT_EQ(out.pixels[y * 15 + i], 40 * y + 7);
}

TEST(ImageResize, RejectsInvalidSizes) {
  const RgbImage img = random_image(4, 4, 2);
  EXPECT_THROW(resize_bicubic(img, 0, 4), Error);
  EXPECT_THROW(resize_bicubic(img, 4, -1), Error);
  EXPECT_THROW(resize_bicubic(RgbImage{}, 4, 4), Error);
}

}  // namespace
}  // namespace minivlm
