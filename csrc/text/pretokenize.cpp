#include "text/pretokenize.h"

#include "text/unicode.h"

namespace minivlm::text {
namespace {

struct Char {
  uint32_t size;
  CharClass cls;
};

class Scanner {
 public:
  explicit Scanner(std::string_view text)
      : s_(reinterpret_cast<const unsigned char*>(text.data())), n_(text.size()) {}

  size_t size() const { return n_; }
  unsigned char byte(size_t i) const { return s_[i]; }

  Char at(size_t i) const {
    if (s_[i] < 0x80) return {1, ascii_class(s_[i])};
    uint32_t cp;
    const int step = utf8_step(s_ + i, n_ - i, &cp);
    if (step < 0) return {static_cast<uint32_t>(-step), kOther};
    return {static_cast<uint32_t>(step), char_class(cp)};
  }

  // End of the run of characters of class `cls` that starts at i.
  size_t run_end(size_t i, CharClass cls) const {
    while (i < n_) {
      const Char c = at(i);
      if (c.cls != cls) break;
      i += c.size;
    }
    return i;
  }

 private:
  static CharClass ascii_class(unsigned char b) {
    if ((b | 0x20) >= 'a' && (b | 0x20) <= 'z') return kLetter;
    if (b >= '0' && b <= '9') return kNumber;
    if (b == ' ' || (b >= '\t' && b <= '\r')) return kSpace;
    return kOther;
  }

  const unsigned char* s_;
  size_t n_;
};

// Length of the contraction ('s 't 're 've 'm 'll 'd) at i, or 0.
size_t contraction_size(const Scanner& sc, size_t i) {
  if (i + 1 >= sc.size()) return 0;
  const unsigned char a = sc.byte(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= sc.size()) return 0;
  const unsigned char b = sc.byte(i + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// End of the piece that starts at i.
size_t piece_end(const Scanner& sc, size_t i) {
  const Char c0 = sc.at(i);
  if (sc.byte(i) == '\'') {
    if (size_t k = contraction_size(sc, i)) return i + k;
  }
  // " ?X+" for the classes letter, number and other: an optional single U+0020 glued in front.
  if (sc.byte(i) == ' ' && i + 1 < sc.size()) {
    const Char c1 = sc.at(i + 1);
    if (c1.cls != kSpace) return sc.run_end(i + 1, c1.cls);
  }
  if (c0.cls != kSpace) return sc.run_end(i, c0.cls);
  // "\s+(?!\S)" takes a whitespace run that ends the text, or else all of it but its last
  // character (which then leads the next piece); "\s+" takes a lone whitespace character.
  size_t last = i, end = i + c0.size;
  while (end < sc.size()) {
    const Char c = sc.at(end);
    if (c.cls != kSpace) break;
    last = end;
    end += c.size;
  }
  if (end == sc.size() || last == i) return end;
  return last;
}

}  // namespace

void split_gpt2(std::string_view text, std::vector<Piece>& out) {
  const Scanner sc(text);
  size_t i = 0;
  while (i < sc.size()) {
    const size_t end = piece_end(sc, i);
    out.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(end - i)});
    i = end;
  }
}

void split_digits(std::string_view text, bool individual, std::vector<Piece>& out) {
  const Scanner sc(text);
  size_t start = 0, i = 0;  // the current piece is [start, i)
  bool in_number = false;   // whether it is made of numeric characters
  while (i < sc.size()) {
    const Char c = sc.at(i);
    const bool number = c.cls == kNumber;
    if (i > start && (number != in_number || (number && individual))) {
      out.push_back({static_cast<uint32_t>(start), static_cast<uint32_t>(i - start)});
      start = i;
    }
    in_number = number;
    i += c.size;
  }
  if (i > start) out.push_back({static_cast<uint32_t>(start), static_cast<uint32_t>(i - start)});
}

}  // namespace minivlm::text
