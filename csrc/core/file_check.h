// Files given where a regular file is expected: every reader checks the path by name before it
// opens it, so a FIFO (whose open() would block until a writer comes: a hang), a device (endless
// or unbounded data) or a directory is refused with an error naming it, and a file is never read
// past a limit of its kind.
#pragma once
#include <cstdint>
#include <string>

namespace minivlm {

// Throws minivlm::Error "cannot open <what> <path>: <reason>" when the path does not exist or
// cannot be examined, and "<what> <path> is a FIFO|directory|character device|..., not a regular
// file" when it is not a regular file (symbolic links are followed). Returns the file's size.
uint64_t require_regular_file(const std::string& path, const std::string& what);

// The bytes of a regular file (require_regular_file first); a file larger than `max_bytes` is an
// error naming it and the limit, refused before anything is read.
std::string read_regular_file(const std::string& path, const std::string& what, uint64_t max_bytes);

}  // namespace minivlm
