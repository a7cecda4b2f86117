#include "data/jsonl_index.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/file_check.h"

namespace minivlm {

namespace {

bool is_blank(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

JsonlIndex::JsonlIndex(std::string path) : path_(std::move(path)) {
  require_regular_file(path_, "dataset");
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  MV_CHECK(fd_ >= 0, "cannot open dataset ", path_, ": ", std::strerror(errno));

  // One pass in large chunks. A line's stored length ends at its last non-blank byte, which drops
  // the "\r" of CRLF files and trailing spaces; a line with no such byte is not a record.
  std::vector<char> chunk(1 << 20);
  uint64_t pos = 0, line_start = 0, content_end = 0;
  uint64_t line = 1;
  const auto fail_closing = [&](const std::string& msg) {
    ::close(fd_);
    fd_ = -1;
    MV_FAIL(msg);
  };
  auto finish_line = [&] {
    if (content_end > line_start) {
      if (line > std::numeric_limits<uint32_t>::max())
        fail_closing(path_ + ": more than 2^32 lines");
      // A line over the limit stays a record (its length clipped): reading it gives the reason it
      // is skipped, so one such line costs one sample, not the dataset.
      const uint64_t length =
          std::min<uint64_t>(content_end - line_start, std::numeric_limits<uint32_t>::max());
      records_.push_back({line_start, static_cast<uint32_t>(length), static_cast<uint32_t>(line)});
    }
  };
  for (;;) {
    const ssize_t n = ::read(fd_, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_closing("cannot read dataset " + path_ + ": " + std::strerror(errno));
    if (n == 0) break;
    for (ssize_t k = 0; k < n; ++k, ++pos) {
      const unsigned char c = static_cast<unsigned char>(chunk[k]);
      if (c == '\n') {
        finish_line();
        ++line;
        line_start = content_end = pos + 1;
      } else if (!is_blank(c)) {
        content_end = pos + 1;
      }
    }
  }
  finish_line();
}

JsonlIndex::~JsonlIndex() {
  if (fd_ >= 0) ::close(fd_);
}

int64_t JsonlIndex::line_number(size_t i) const {
  MV_CHECK(i < records_.size(), path_, ": record ", i, " out of range (", records_.size(),
           " records)");
  return records_[i].line;
}

std::string JsonlIndex::location(size_t i) const {
  return path_ + ":" + std::to_string(line_number(i));
}

Record JsonlIndex::record(size_t i) const {
  Record r;
  MV_CHECK(i < records_.size(), path_, ": record ", i, " out of range (", records_.size(),
           " records)");
  if (records_[i].length > kMaxJsonlLineBytes)
    r.error = detail::str_cat("line of ",
                              records_[i].length == std::numeric_limits<uint32_t>::max()
                                  ? "4 GiB or more"
                                  : std::to_string(records_[i].length) + " bytes",
                              " is longer than the limit of ", kMaxJsonlLineBytes, " bytes");
  else
    r.text = read(i);
  return r;
}

std::string JsonlIndex::read(size_t i) const {
  MV_CHECK(i < records_.size(), path_, ": record ", i, " out of range (", records_.size(),
           " records)");
  const Line& r = records_[i];
  MV_CHECK(r.length <= kMaxJsonlLineBytes, path_, ":", r.line, ": line longer than the limit of ",
           kMaxJsonlLineBytes, " bytes");
  std::string text(r.length, '\0');
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n =
        ::pread(fd_, text.data() + done, text.size() - done, static_cast<off_t>(r.offset + done));
    if (n < 0 && errno == EINTR) continue;
    MV_CHECK(n >= 0, "cannot read ", path_, ":", r.line, ": ", std::strerror(errno));
    MV_CHECK(n > 0, path_, ":", r.line, ": the file is shorter than when it was indexed");
    done += static_cast<size_t>(n);
  }
  return text;
}

}  // namespace minivlm
