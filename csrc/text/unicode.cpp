#include "text/unicode.h"

#include <array>
#include <map>
#include <vector>

namespace minivlm::text {
namespace {

struct ClassRange {
  uint32_t first, last;
  CharClass cls;
};

constexpr ClassRange kClassRanges[] = {
#include "text/unicode_classes.inc"
};

// Two-stage lookup: blocks of 256 code points, identical blocks shared. Built once from the ranges.
struct ClassTable {
  static constexpr uint32_t kBlocks = 0x110000 / 256;
  std::array<uint16_t, kBlocks> block_of{};
  std::vector<std::array<CharClass, 256>> blocks;

  ClassTable() {
    std::vector<CharClass> all(0x110000, kOther);
    for (const ClassRange& r : kClassRanges)
      for (uint32_t cp = r.first; cp <= r.last; ++cp) all[cp] = r.cls;
    std::map<std::array<CharClass, 256>, uint16_t> index;
    for (uint32_t b = 0; b < kBlocks; ++b) {
      std::array<CharClass, 256> block;
      for (uint32_t i = 0; i < 256; ++i) block[i] = all[b * 256 + i];
      auto [it, inserted] = index.try_emplace(block, static_cast<uint16_t>(blocks.size()));
      if (inserted) blocks.push_back(block);
      block_of[b] = it->second;
    }
  }
};

const ClassTable& class_table() {
  static const ClassTable table;
  return table;
}

}  // namespace

CharClass char_class(uint32_t cp) {
  if (cp >= 0x110000) return kOther;
  const ClassTable& t = class_table();
  return t.blocks[t.block_of[cp >> 8]][cp & 0xFF];
}

int utf8_step(const unsigned char* s, size_t n, uint32_t* cp) {
  const unsigned char b0 = s[0];
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  int len;
  uint32_t value;
  unsigned char lo = 0x80, hi = 0xBF;  // valid range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    value = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    value = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    value = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return -1;
  }
  for (int i = 1; i < len; ++i) {
    if (static_cast<size_t>(i) >= n) return -i;
    const unsigned char b = s[i];
    if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) return -i;
    value = (value << 6) | (b & 0x3F);
  }
  *cp = value;
  return len;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string utf8_lossy(std::string_view bytes) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  std::string out;
  out.reserve(n);
  size_t i = 0;
  while (i < n) {
    uint32_t cp;
    const int step = utf8_step(s + i, n - i, &cp);
    if (step > 0) {
      out.append(bytes.data() + i, static_cast<size_t>(step));
      i += static_cast<size_t>(step);
    } else {
      append_utf8(out, 0xFFFD);
      i += static_cast<size_t>(-step);
    }
  }
  return out;
}

}  // namespace minivlm::text
