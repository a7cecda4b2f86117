// Decoding (SPEC §2) against Pillow: PNG / BMP / GIF / JPEG, alpha over white, error messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/error.h"
#include "data/image.h"
#include "test_image_goldens.h"

namespace minivlm {
namespace {

using image_test::golden_u8;
using image_test::goldens;
using image_test::read_bytes;
using image_test::source_path;
using ::testing::HasSubstr;

std::string fnv1a64(const std::vector<uint8_t>& bytes) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (uint8_t b : bytes) h = (h ^ b) * 0x100000001B3ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ImageDecode, MatchesPillowWithinOne) {
  image_test::U8Stats stats;
  for (const auto& c : goldens()["decode"]) {
    const std::string input = c["input"];
    SCOPED_TRACE(input);
    const RgbImage img = load_rgb_image(source_path(input));
    ASSERT_EQ(img.width, c["width"].get<int>());
    ASSERT_EQ(img.height, c["height"].get<int>());
    ASSERT_EQ(img.pixels.size(), size_t(img.width) * img.height * 3);
    stats.add(image_test::subsample(img, c["stride"]), golden_u8(c));
  }
  stats.report("decode vs Pillow");
  EXPECT_GT(stats.values, 300000);
}

// Our JPEG path redoes libjpeg's arithmetic, so whole decoded images hash like Pillow's.
TEST(ImageDecode, JpegIsBitExactWithPillow) {
  int checked = 0;
  for (const auto& c : goldens()["decode"]) {
    if (c["fnv1a64"].is_null()) continue;
    const std::string input = c["input"];
    EXPECT_EQ(fnv1a64(load_rgb_image(source_path(input)).pixels), c["fnv1a64"].get<std::string>())
        << input;
    ++checked;
  }
  // 6 eval photos; 4:2:0, 4:2:2, 4:4:4, 4:4:0, 4:1:1, gray, progressive; 800x600 with restart
  // markers, and progressive 4:4:4 with optimized tables.
  EXPECT_GE(checked, 16);
}

TEST(ImageDecode, TransparentPixelsBecomeWhite) {
  // The first five pixels of rgba_31x17.png have alpha 0, the next five alpha 255.
  const RgbImage img = load_rgb_image(source_path("tests/goldens/image/inputs/rgba_31x17.png"));
  for (int i = 0; i < 15; ++i) EXPECT_EQ(img.pixels[i], 255) << "byte " << i;
}

TEST(ImageDecode, DecodesFromMemoryLikeFromFile) {
  const std::string path = source_path("tests/goldens/image/inputs/photo_45x31_420.jpg");
  const auto bytes = read_bytes(path);
  EXPECT_EQ(decode_rgb_image(bytes.data(), bytes.size(), "mem").pixels,
            load_rgb_image(path).pixels);
}

TEST(ImageDecode, MissingFileNamesPathAndReason) {
  const std::string path = source_path("tests/goldens/image/inputs/no_such_image.png");
  const std::string msg = error_of([&] { load_rgb_image(path); });
  EXPECT_THAT(msg, HasSubstr(path));
  EXPECT_THAT(msg, HasSubstr("No such file"));
  EXPECT_THAT(error_of([] { load_rgb_image(MINIVLM_SOURCE_DIR); }), HasSubstr("is a directory"));
}

TEST(ImageDecode, CorruptDataNamesFileAndReason) {
  const std::string png = "tests/goldens/image/inputs/rgb_37x23.png";
  auto bytes = read_bytes(source_path(png));
  EXPECT_THAT(error_of([&] { decode_rgb_image(bytes.data(), bytes.size() / 2, "half.png"); }),
              AllOf(HasSubstr("half.png"), HasSubstr("cannot decode")));
  const std::string text = "this is not an image";
  EXPECT_THAT(error_of([&] {
                decode_rgb_image(reinterpret_cast<const uint8_t*>(text.data()), text.size(),
                                 "t.jpg");
              }),
              AllOf(HasSubstr("t.jpg"), HasSubstr("unknown image type")));
  EXPECT_THAT(error_of([] { decode_rgb_image(nullptr, 0, "empty.png"); }),
              AllOf(HasSubstr("empty.png"), HasSubstr("empty")));
  auto jpeg = read_bytes(source_path("tests/goldens/image/inputs/photo_45x31_420.jpg"));
  EXPECT_THAT(error_of([&] { decode_rgb_image(jpeg.data(), 100, "cut.jpg"); }),
              HasSubstr("cut.jpg"));
}

// As Pillow (without LOAD_TRUNCATED_IMAGES): a JPEG whose data ends inside the image is refused
// ("image file is truncated"), while corrupt entropy-coded data that libjpeg conceals decodes.
TEST(ImageDecode, TruncatedJpegIsRefusedCorruptScanDecodes) {
  const std::string path = source_path("tests/fixtures/images/image-04-yellow-car.jpg");
  const auto bytes = read_bytes(path);
  const std::string msg =
      error_of([&] { decode_rgb_image(bytes.data(), bytes.size() * 6 / 10, "cut.jpg"); });
  EXPECT_THAT(msg, AllOf(HasSubstr("cut.jpg"), HasSubstr("truncated JPEG")));
  auto corrupt = bytes;
  for (size_t k = 3000; k < 3050; ++k) corrupt[k] ^= 0x55;  // inside the scan
  const RgbImage img = decode_rgb_image(corrupt.data(), corrupt.size(), "corrupt.jpg");
  EXPECT_EQ(img.width, 640);
  EXPECT_NE(img.pixels, load_rgb_image(path).pixels);
}

// A progressive JPEG of more than 500 scans (libjpeg-turbo's TJFLAG_LIMITSCANS) is refused: a few
// kilobytes of scans could otherwise keep the decoder busy for minutes.
TEST(ImageDecode, JpegOfTooManyScansIsRefused) {
  const auto bytes =
      read_bytes(source_path("tests/goldens/image/inputs/photo_progressive_64x48.jpg"));
  // Repeat the file's last scan (its SOS segment and data, up to EOI) 600 times.
  size_t last_sos = 0;
  for (size_t i = 0; i + 1 < bytes.size(); ++i)
    if (bytes[i] == 0xFF && bytes[i + 1] == 0xDA) last_sos = i;
  ASSERT_GT(last_sos, 0u);
  std::vector<uint8_t> many(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(last_sos));
  for (int r = 0; r < 600; ++r)
    many.insert(many.end(), bytes.begin() + static_cast<ptrdiff_t>(last_sos), bytes.end() - 2);
  many.push_back(0xFF), many.push_back(0xD9);
  EXPECT_THAT(error_of([&] { decode_rgb_image(many.data(), many.size(), "many.jpg"); }),
              AllOf(HasSubstr("many.jpg"), HasSubstr("more than 500 scans")));
}

}  // namespace
}  // namespace minivlm
