// Access to the image goldens written by scripts/reference/image_goldens.py (Pillow, numpy and
// transformers' CLIP and SigLIP image processors): tests/goldens/image/goldens.json plus raw
// little-endian arrays; and by scripts/reference/smolvlm_image_goldens.py (Pillow's LANCZOS,
// transformers' SmolVLM image processor): tests/goldens/image/smolvlm.json.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/image.h"

namespace minivlm::image_test {

inline std::string source_path(const std::string& rel) {
  return std::string(MINIVLM_SOURCE_DIR) + "/" + rel;
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.is_open()) << "cannot open " << path;
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline const nlohmann::json& goldens() {
  static const nlohmann::json j = [] {
    const auto bytes = read_bytes(source_path("tests/goldens/image/goldens.json"));
    return nlohmann::json::parse(bytes.begin(), bytes.end());
  }();
  return j;
}

inline const nlohmann::json& smolvlm_goldens() {
  static const nlohmann::json j = [] {
    const auto bytes = read_bytes(source_path("tests/goldens/image/smolvlm.json"));
    return nlohmann::json::parse(bytes.begin(), bytes.end());
  }();
  return j;
}

// A fixture image decoded once per test binary.
inline const RgbImage& decoded(const std::string& path) {
  static std::map<std::string, RgbImage> cache;
  auto it = cache.find(path);
  if (it == cache.end()) it = cache.emplace(path, load_rgb_image(source_path(path))).first;
  return it->second;
}

// [left, top, right, bottom] of `img`, as PIL's crop (inside the image).
inline RgbImage crop(const RgbImage& img, const nlohmann::json& box) {
  if (box.is_null()) return img;
  const int l = box[0], t = box[1], r = box[2], b = box[3];
  RgbImage out{r - l, b - t, {}};
  for (int y = t; y < b; ++y) {
    const uint8_t* row = &img.pixels[(size_t(y) * img.width + l) * 3];
    out.pixels.insert(out.pixels.end(), row, row + size_t(r - l) * 3);
  }
  return out;
}

inline std::vector<uint8_t> golden_u8(const nlohmann::json& c) {
  return read_bytes(source_path("tests/goldens/image/" + c["data"].get<std::string>()));
}

inline std::vector<float> golden_f32(const nlohmann::json& c) {
  const auto bytes = golden_u8(c);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

// Pixels (y, x) with y, x multiples of `stride`, row-major, 3 channels.
inline std::vector<uint8_t> subsample(const RgbImage& img, int stride) {
  std::vector<uint8_t> out;
  for (int y = 0; y < img.height; y += stride)
    for (int x = 0; x < img.width; x += stride)
      for (int c = 0; c < 3; ++c) out.push_back(img.pixels[(size_t(y) * img.width + x) * 3 + c]);
  return out;
}

// The FNV-1a 64-bit hash of `n` bytes as 16 hex digits, as the script's fnv1a64.
inline std::string fnv1a64_hex(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t h = 0xCBF29CE484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// Counts of a uint8 comparison, accumulated over cases.
struct U8Stats {
  int64_t values = 0, exact = 0, off_by_one = 0;
  void add(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want) {
    ASSERT_EQ(got.size(), want.size());
    int64_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const int d = std::abs(int(got[i]) - int(want[i]));
      exact += d == 0;
      off_by_one += d == 1;
      if (d > 1 && bad++ < 5)
        ADD_FAILURE() << "value " << i << ": got " << int(got[i]) << ", Pillow " << int(want[i]);
    }
    values += int64_t(got.size());
    EXPECT_EQ(bad, 0) << "values more than 1 away from Pillow";
  }
  void report(const char* what) const {
    std::printf("[ stats    ] %s: %lld values, %lld exact (%.4f%%), %lld off by one\n", what,
                static_cast<long long>(values), static_cast<long long>(exact),
                values ? 100.0 * double(exact) / double(values) : 0.0,
                static_cast<long long>(off_by_one));
  }
};

}  // namespace minivlm::image_test
