// Files that are either absent, the previous version, or complete: written to a temporary name,
// synced, and renamed into place, so a kill at any instant never leaves a partial file.
#pragma once
#include <string>

namespace minivlm {

// Writes `text` to `path` through a synced temporary file (`path`.tmp) and a rename.
void write_file_atomic(const std::string& path, const std::string& text);
// fsync of a file or directory (a directory's sync makes the renames inside it durable); a path
// that cannot be opened is left alone.
void fsync_path(const std::string& path);

}  // namespace minivlm
