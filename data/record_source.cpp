#include "data/record_source.h"

#include <cctype>

#include "core/file_check.h"
#include "data/jsonl_index.h"
#include "data/parquet_source.h"

namespace minivlm {

bool is_parquet_path(const std::string& path) {
  static const std::string ext = ".parquet";
  if (path.size() < ext.size()) return false;
  for (size_t k = 0; k < ext.size(); ++k)
    if (std::tolower(static_cast<unsigned char>(path[path.size() - ext.size() + k])) != ext[k])
      return false;
  return true;
}

std::unique_ptr<RecordSource> open_record_source(const std::string& path) {
  require_regular_file(path, "dataset");  // before any reader opens it: a FIFO would block
  if (is_parquet_path(path)) return open_parquet_source(path);
  return std::make_unique<JsonlIndex>(path);
}

}  // namespace minivlm
