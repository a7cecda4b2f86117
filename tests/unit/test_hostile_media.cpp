// Hostile images and videos: sizes are checked from the header before anything is decoded (the
// pixel limit, MINIVLM_MAX_IMAGE_PIXELS), data that inflates past what the header allows fails
// cleanly, and a video's demuxer opens no file but the one it was given.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "core/error.h"
#include "data/image.h"
#include "data/video.h"
#include "test_dataset_fixtures.h"

namespace minivlm {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing_data::ScratchDir;
using testing_data::write_file;

const std::string kVideo = MINIVLM_SOURCE_DIR "/tests/fixtures/video/tiny.mp4";

using testing_data::error_of;

std::string decode_error(const std::string& bytes) {
  return error_of([&] {
    decode_rgb_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "hostile");
  });
}

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (had_)
      ::setenv(name_, old_.c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

void put_be32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s += static_cast<char>(v >> (8 * i));
}
void put_le16(std::string& s, uint32_t v) {
  s += static_cast<char>(v), s += static_cast<char>(v >> 8);
}
void put_le32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s += static_cast<char>(v >> (8 * i));
}

uint32_t crc32(const std::string& s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

std::string png_chunk(const std::string& type, const std::string& data) {
  std::string out;
  put_be32(out, static_cast<uint32_t>(data.size()));
  out += type + data;
  put_be32(out, crc32(type + data));
  return out;
}

// An 8-bit RGB PNG of the given header size with `idat` as its compressed data.
std::string png(uint32_t width, uint32_t height, const std::string& idat) {
  std::string ihdr;
  put_be32(ihdr, width);
  put_be32(ihdr, height);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + png_chunk("IDAT", idat) +
         png_chunk("IEND", "");
}

// A zlib stream of `n` zero bytes in one fixed-Huffman block: a literal 0, then copies of length
// 258 at distance 1 (13 bits each), so the data is about 160 times smaller than its output.
std::string zlib_zeros(uint64_t n) {
  std::string out("\x78\x01", 2);
  uint32_t acc = 0;
  int bits = 0;
  auto put = [&](uint32_t v, int count) {  // LSB first
    for (int i = 0; i < count; ++i) {
      acc |= ((v >> i) & 1u) << bits;
      if (++bits == 8) out += static_cast<char>(acc), acc = 0, bits = 0;
    }
  };
  auto put_code = [&](uint32_t code, int count) {  // Huffman codes go MSB first
    for (int i = count - 1; i >= 0; --i) put((code >> i) & 1u, 1);
  };
  put(1, 1);              // final block
  put(1, 2);              // fixed Huffman
  put_code(0x30 + 0, 8);  // literal 0
  uint64_t left = n - 1;
  while (left >= 258) {
    put_code(0xC0 + 5, 8);  // length 258 (symbol 285)
    put_code(0, 5);         // distance 1
    left -= 258;
  }
  for (; left > 0; --left) put_code(0x30, 8);
  put_code(0, 7);  // end of block
  if (bits) out += static_cast<char>(acc);
  put_be32(out, static_cast<uint32_t>((n % 65521) << 16 | 1));  // adler32 of zeros
  return out;
}

TEST(HostileImage, HugeHeadersAreRefusedBeforeDecoding) {
  // 15000² = 225M pixels, above the default limit of 178,956,970 and within what stb_image
  // itself accepts; the file holds no pixel data at all.
  const uint32_t n = 15000;
  std::string gif = "GIF89a";
  put_le16(gif, n), put_le16(gif, n);
  gif += std::string("\x00\x00\x00", 3);
  std::string bmp = "BM";
  put_le32(bmp, 54), put_le32(bmp, 0), put_le32(bmp, 54), put_le32(bmp, 40);
  put_le32(bmp, n), put_le32(bmp, n);
  put_le16(bmp, 1), put_le16(bmp, 24);
  for (int i = 0; i < 6; ++i) put_le32(bmp, 0);
  std::string jpeg("\xFF\xD8\xFF\xC0\x00\x11\x08", 7);
  jpeg += static_cast<char>(n >> 8), jpeg += static_cast<char>(n & 0xFF);
  jpeg += static_cast<char>(n >> 8), jpeg += static_cast<char>(n & 0xFF);
  jpeg += std::string("\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01", 10);
  for (const auto& [name, bytes] : std::vector<std::pair<const char*, std::string>>{
           {"png", png(n, n, zlib_zeros(1000))}, {"gif", gif}, {"bmp", bmp}, {"jpeg", jpeg}}) {
    SCOPED_TRACE(name);
    const std::string err = decode_error(bytes);
    EXPECT_THAT(err, HasSubstr("15000x15000 = 225000000 pixels, more than the limit of 178956970"));
    EXPECT_THAT(err, HasSubstr("MINIVLM_MAX_IMAGE_PIXELS"));
  }
  // Sizes stb_image refuses itself (past 2^24 per side, or 2^30 bytes) are errors too.
  EXPECT_THAT(decode_error(png(100000, 100000, zlib_zeros(100))), HasSubstr("hostile"));
  EXPECT_THAT(decode_error(png(0, 10, zlib_zeros(100))), HasSubstr("hostile"));
}

TEST(HostileImage, PixelLimitComesFromTheEnvironment) {
  ScratchDir dir;
  testing_data::write_png(dir.file("a.png"), 20, 10, 1);
  EXPECT_EQ(load_rgb_image(dir.file("a.png")).width, 20);
  {
    ScopedEnv env("MINIVLM_MAX_IMAGE_PIXELS", "199");
    EXPECT_EQ(max_image_pixels(), 199);
    EXPECT_THAT(error_of([&] { load_rgb_image(dir.file("a.png")); }),
                HasSubstr("20x10 = 200 pixels, more than the limit of 199"));
  }
  {
    ScopedEnv env("MINIVLM_MAX_IMAGE_PIXELS", "200");
    EXPECT_EQ(load_rgb_image(dir.file("a.png")).height, 10);
  }
  for (const char* bad : {"-5", "0", "lots", "12abc", "99999999999999999999999"}) {
    ScopedEnv env("MINIVLM_MAX_IMAGE_PIXELS", bad);
    EXPECT_THAT(
        error_of([&] { load_rgb_image(dir.file("a.png")); }),
        HasSubstr("MINIVLM_MAX_IMAGE_PIXELS='" + std::string(bad) + "' is not a positive integer"));
  }
  // Above the default, allowed by raising the limit: the 15000² header then reaches the decoder,
  // which finds no data.
  ScopedEnv env("MINIVLM_MAX_IMAGE_PIXELS", "300000000");
  const std::string err = decode_error(png(15000, 15000, zlib_zeros(1000)));
  EXPECT_THAT(err, ::testing::Not(HasSubstr("more than the limit")));
  EXPECT_THAT(err, HasSubstr("hostile"));
}

TEST(HostileImage, DataInflatingPastItsHeaderSizeFailsCleanly) {
  // A 16x16 PNG whose data inflates to 256 MiB: without a cap on the decoder's buffers that much
  // memory would be taken before the excess is noticed.
  const std::string bomb = png(16, 16, zlib_zeros(uint64_t{256} << 20));
  EXPECT_LT(bomb.size(), 2u << 20);
  EXPECT_THAT(decode_error(bomb), HasSubstr("cannot decode image hostile"));
  // The same image with the right amount of data decodes.
  const RgbImage ok = [&] {
    const std::string good = png(16, 16, zlib_zeros(16 * (1 + 16 * 3)));
    return decode_rgb_image(reinterpret_cast<const uint8_t*>(good.data()), good.size(), "good");
  }();
  EXPECT_EQ(ok.width, 16);
  EXPECT_EQ(ok.pixels[0], 0);
}

TEST(HostileImage, JpegHuffmanTablesOfTooManyCodesAreRefused) {
  // stb_image 2.27 writes past its table for a DHT segment whose 16 counts sum beyond 256 (found by
  // fuzz_image_decode, in the header and between progressive scans; stb also takes FF FF D8 for a
  // JPEG start).
  std::string dht("\xFF\xC4\x00\x13\x00", 5);
  dht += std::string(16, '\x11');  // 272 codes
  for (const std::string& start : {std::string("\xFF\xD8", 2), std::string("\xFF\xFF\xD8", 3)}) {
    EXPECT_THAT(decode_error(start + dht + std::string(300, '\x01')),
                HasSubstr("Huffman table of 272 codes"));
  }
  // The same bytes inside an APP2 payload (an ICC profile may hold anything) are not a table.
  const std::string path = MINIVLM_SOURCE_DIR "/tests/fixtures/images/image-04-yellow-car.jpg";
  std::ifstream f(path, std::ios::binary);
  const std::string jpeg((std::istreambuf_iterator<char>(f)), {});
  ASSERT_GT(jpeg.size(), 2u);
  std::string app2("\xFF\xE2", 2);
  const std::string payload = "ICC_PROFILE" + dht + std::string(40, '\x7F');
  app2 += static_cast<char>((payload.size() + 2) >> 8),
      app2 += static_cast<char>(payload.size() + 2);
  const std::string with_app2 = jpeg.substr(0, 2) + app2 + payload + jpeg.substr(2);
  const auto decode = [](const std::string& bytes) {
    return decode_rgb_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x");
  };
  EXPECT_EQ(decode(with_app2).pixels, decode(jpeg).pixels);
  // Nor are they inside a quantisation table (an unused table 3 of values 255, 196, 240, ...).
  std::string dqt("\xFF\xDB\x00\x43\x03\xFF\xC4", 7);
  dqt += std::string(62, '\xF0');
  EXPECT_EQ(decode(jpeg.substr(0, 2) + dqt + jpeg.substr(2)).pixels, decode(jpeg).pixels);
}

TEST(HostileVideo, FrameSizeIsCheckedFromTheMetadata) {
  const VideoInfo info = probe_video(kVideo);
  ASSERT_GT(info.width * info.height, 1);
  ScopedEnv env("MINIVLM_MAX_IMAGE_PIXELS", "1");
  EXPECT_THAT(error_of([&] { probe_video(kVideo); }), HasSubstr("more than the limit of 1"));
}

TEST(HostileVideo, PlaylistsCannotOpenOtherFiles) {
  ScratchDir dir;
  fs::copy_file(kVideo, dir.file("real.mp4"));
  write_file(dir.file("list.ffconcat"), "ffconcat version 1.0\nfile 'real.mp4'\n");
  write_file(dir.file("list.m3u8"),
             "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nreal.mp4\n"
             "#EXT-X-ENDLIST\n");
  EXPECT_GT(probe_video(dir.file("real.mp4")).total_frames, 0);
  for (const char* name : {"list.ffconcat", "list.m3u8"}) {
    SCOPED_TRACE(name);
    EXPECT_THAT(error_of([&] { probe_video(dir.file(name)); }), HasSubstr(dir.file(name)));
  }
}

TEST(HostileVideo, GarbageIsAnError) {
  ScratchDir dir;
  write_file(dir.file("v.mp4"), std::string(4096, '\x17'));
  EXPECT_THAT(error_of([&] { probe_video(dir.file("v.mp4")); }), HasSubstr("v.mp4"));
  write_file(dir.file("e.mp4"), "");
  EXPECT_THAT(error_of([&] { probe_video(dir.file("e.mp4")); }), HasSubstr("e.mp4"));
}

}  // namespace
}  // namespace minivlm
