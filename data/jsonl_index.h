// Line index of a JSONL file, the JSONL record source: the byte range and line number of every
// non-empty line, built by streaming the file once. The text itself stays on disk; a record is read
// back with one pread, so a dataset of millions of lines costs 16 bytes per line in memory and any
// number of threads may read records at the same time.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/record_source.h"

namespace minivlm {

// Lines longer than this are never read: record() gives the reason instead, and the dataset skips
// that sample (a record is read whole, then parsed into a JSON value several times its size).
inline constexpr uint64_t kMaxJsonlLineBytes = uint64_t{64} << 20;

class JsonlIndex : public RecordSource {
 public:
  // Throws minivlm::Error naming the path when it is not a regular file (checked before it is
  // opened: a FIFO would block) or cannot be opened or read. A line longer than
  // kMaxJsonlLineBytes is indexed but never read (record() gives the reason).
  explicit JsonlIndex(std::string path);
  ~JsonlIndex() override;
  JsonlIndex(const JsonlIndex&) = delete;
  JsonlIndex& operator=(const JsonlIndex&) = delete;

  const std::string& path() const override { return path_; }
  // Records = lines holding something other than whitespace. "\n" and "\r\n" both end a line.
  size_t size() const override { return records_.size(); }
  int64_t line_number(size_t i) const;  // 1-based line of record i in the file
  // The text of record i without its line ending. Thread-safe. Throws minivlm::Error when the file
  // changed under the index (a short read).
  std::string read(size_t i) const;
  // "FILE:LINE" and the line as a record (RecordSource).
  std::string location(size_t i) const override;
  Record record(size_t i) const override;

 private:
  struct Line {
    uint64_t offset;  // byte offset of the line's first byte
    uint32_t length;  // bytes before the line ending
    uint32_t line;    // 1-based line number
  };

  std::string path_;
  int fd_ = -1;
  std::vector<Line> records_;
};

}  // namespace minivlm
