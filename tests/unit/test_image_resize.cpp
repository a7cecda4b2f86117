// Pillow-compatible BICUBIC, BILINEAR and LANCZOS resize (SPEC §2) against Pillow's Image.resize.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
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

// Every stored (possibly strided) value equal to Pillow's, and the hash of all bytes.
void expect_bit_exact(const nlohmann::json& cases, Resample resample, const char* what) {
  int n = 0, upscaled = 0, downscaled = 0;
  int64_t values = 0;
  for (const auto& c : cases) {
    const std::string input = c["input"];
    const int w = c["width"], h = c["height"], stride = c["stride"];
    SCOPED_TRACE(input + " -> " + std::to_string(w) + "x" + std::to_string(h));
    const RgbImage in = load_rgb_image(source_path(input));
    const RgbImage out = resize(in, w, h, resample);
    ASSERT_EQ(out.width, w);
    ASSERT_EQ(out.height, h);
    const std::vector<uint8_t> want = golden_u8(c);
    const std::vector<uint8_t> got = image_test::subsample(out, stride);
    ASSERT_EQ(got.size(), want.size());
    int64_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i)
      if (got[i] != want[i] && bad++ < 5)
        ADD_FAILURE() << "value " << i << ": got " << int(got[i]) << ", Pillow " << int(want[i]);
    EXPECT_EQ(bad, 0);
    EXPECT_EQ(image_test::fnv1a64_hex(out.pixels.data(), out.pixels.size()),
              c["fnv1a64"].get<std::string>());
    upscaled += w > in.width || h > in.height;
    downscaled += w < in.width || h < in.height;
    values += int64_t(out.pixels.size());
    ++n;
  }
  std::printf("[ stats    ] %s resize vs Pillow: %d cases (%d up, %d down), %lld values\n", what, n,
              upscaled, downscaled, static_cast<long long>(values));
  EXPECT_GE(n, 40);
  EXPECT_GE(upscaled, 10);
  EXPECT_GE(downscaled, 10);
}

TEST(ImageResize, MatchesPillowBilinearExactly) {
  expect_bit_exact(goldens()["resize_bilinear"], Resample::bilinear, "bilinear");
}

// Image.resize(…, LANCZOS): the same inputs and sizes, and the photos upscaled to 700x650.
TEST(ImageResize, MatchesPillowLanczosExactly) {
  expect_bit_exact(image_test::smolvlm_goldens()["resize_lanczos"], Resample::lanczos, "lanczos");
}

// The filters differ, and resize_bicubic is resize(…, Resample::bicubic).
TEST(ImageResize, FilterIsAParameter) {
  const RgbImage img = load_rgb_image(source_path("tests/goldens/image/inputs/photo_160x120.png"));
  for (const auto [w, h] : {std::array<int, 2>{64, 48}, {224, 168}, {161, 60}}) {
    EXPECT_EQ(resize(img, w, h, Resample::bicubic).pixels, resize_bicubic(img, w, h).pixels);
    EXPECT_NE(resize(img, w, h, Resample::bilinear).pixels, resize_bicubic(img, w, h).pixels);
    EXPECT_NE(resize(img, w, h, Resample::lanczos).pixels, resize_bicubic(img, w, h).pixels);
    EXPECT_NE(resize(img, w, h, Resample::lanczos).pixels,
              resize(img, w, h, Resample::bilinear).pixels);
  }
}

TEST(ImageResize, ResampleNames) {
  EXPECT_EQ(resample_from_name("bilinear"), Resample::bilinear);
  EXPECT_EQ(resample_from_name("bicubic"), Resample::bicubic);
  EXPECT_STREQ(resample_name(Resample::bilinear), "bilinear");
  EXPECT_EQ(resample_from_name("lanczos"), Resample::lanczos);
  EXPECT_STREQ(resample_name(Resample::bicubic), "bicubic");
  EXPECT_STREQ(resample_name(Resample::lanczos), "lanczos");
  EXPECT_THROW(resample_from_name("nearest"), Error);
  EXPECT_THROW(resample_from_name("LANCZOS"), Error);
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
  EXPECT_EQ(resize(img, 23, 17, Resample::bilinear).pixels, img.pixels);
  EXPECT_EQ(resize(img, 23, 17, Resample::lanczos).pixels, img.pixels);
}

// One axis unchanged: only the other axis is filtered, so an image constant along the resized
// axis keeps its values exactly (the normalized taps sum to one in fixed point, up to rounding).
TEST(ImageResize, SingleAxisResizeKeepsConstantRows) {
  RgbImage img{9, 4, std::vector<uint8_t>(9 * 4 * 3)};
  for (int y = 0; y < 4; ++y)
    for (int i = 0; i < 27; ++i) img.pixels[y * 27 + i] = static_cast<uint8_t>(40 * y + 7);
  for (const Resample r : {Resample::bicubic, Resample::bilinear, Resample::lanczos}) {
    const RgbImage out = resize(img, 5, 4, r);
    for (int y = 0; y < 4; ++y)
      for (int i = 0; i < 15; ++i) EXPECT_EQ(out.pixels[y * 15 + i], 40 * y + 7);
  }
}

TEST(ImageResize, RejectsInvalidSizes) {
  const RgbImage img = random_image(4, 4, 2);
  EXPECT_THROW(resize_bicubic(img, 0, 4), Error);
  EXPECT_THROW(resize_bicubic(img, 4, -1), Error);
  EXPECT_THROW(resize_bicubic(RgbImage{}, 4, 4), Error);
  EXPECT_THROW(resize(img, 0, 4, Resample::bilinear), Error);
}

}  // namespace
}  // namespace minivlm
