// Where a dataset's records come from (SPEC §4.1): a JSONL file (data/jsonl_index.h, one record per
// non-empty line, images named by path) or a parquet file in MiniMind-V's layout
// (data/parquet_source.h, one record per row, images carried in the row). A source gives random
// access by record index from any number of threads; the dataset (data/dataset.h) turns the record
// into a sample the same way whichever source it came from.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace minivlm {

struct Record {
  // JSONL: the line, a JSON object with `conversations` and optionally `image` / `video` paths.
  // Parquet: the row's `conversations` value, a JSON list of {role, content}.
  std::string text;
  bool text_is_conversations = false;
  // The images the record carries itself (parquet's image_bytes), encoded (JPEG, PNG, ...), in
  // order. Empty for JSONL, whose records name image files instead.
  std::vector<std::string> image_bytes;
  // Set when this record alone cannot be read (a parquet row the reader cannot decode): the
  // record is then skipped for this reason; text and images are empty.
  std::string error;
};

class RecordSource {
 public:
  virtual ~RecordSource() = default;
  virtual const std::string& path() const = 0;
  virtual size_t size() const = 0;
  // Where record i is, for warnings: "FILE:LINE" (JSONL, 1-based line) or "FILE:row N" (parquet,
  // 0-based row of the file).
  virtual std::string location(size_t i) const = 0;
  // Record i. Thread-safe. Throws minivlm::Error only for failures of the source as a whole (the
  // file changed under its index).
  virtual Record record(size_t i) const = 0;
};

// A parquet source for a path ending in ".parquet" (any case), else a JSONL source. Throws
// minivlm::Error naming the path when it cannot be opened, or, for parquet, when minivlm was built
// without the parquet reader or the file is not parquet in MiniMind-V's layout.
std::unique_ptr<RecordSource> open_record_source(const std::string& path);
bool is_parquet_path(const std::string& path);

}  // namespace minivlm
