#include "infer/utf8_stream.h"

namespace minivlm {

namespace {
// Length of the UTF-8 sequence a lead byte starts (1 for ASCII and for bytes that cannot lead).
size_t sequence_length(unsigned char c) {
  if (c >= 0xF0 && c <= 0xF4) return 4;
  if (c >= 0xE0) return c <= 0xEF ? 3 : 1;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  return 1;
}
}  // namespace

std::string Utf8Stream::push(const std::string& bytes) {
  pending_ += bytes;
  // Look back at most 3 bytes for the lead byte of a character that is still incomplete.
  size_t cut = pending_.size();
  for (size_t back = 1; back <= 3 && back <= pending_.size(); ++back) {
    const unsigned char c = static_cast<unsigned char>(pending_[pending_.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte
    if (sequence_length(c) > back) cut = pending_.size() - back;
    break;
  }
  std::string out = pending_.substr(0, cut);
  pending_.erase(0, cut);
  return out;
}

std::string Utf8Stream::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace minivlm
