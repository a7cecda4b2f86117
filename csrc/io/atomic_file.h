// Files and directories that are either absent, the previous version, or complete: written to a
// temporary name, synced, and renamed into place, so a kill at any instant never leaves a partial
// one.
#pragma once
#include <string>
#include <vector>

namespace minivlm {

// Writes `text` to `path` through a synced temporary file (`path`.tmp) and a rename.
void write_file_atomic(const std::string& path, const std::string& text);
// fsync of a file or directory (a directory's sync makes the renames inside it durable); a path
// that cannot be opened is left alone.
void fsync_path(const std::string& path);
// fsync of every regular file under `dir`, then of every directory under it and `dir` itself.
void fsync_tree(const std::string& dir);

// Publishes the complete, synced directory `tmp` as `dest` (same parent directory). When `dest`
// does not exist this is one rename. When it does, the two are exchanged in one step
// (renameat2 RENAME_EXCHANGE) and the old one, now at `tmp`, is deleted; where the file system
// cannot exchange, the old one is renamed aside to `.old_<name>` first, the new one renamed in,
// and the old one deleted — recover_replaced_dir puts it back after a kill between the renames.
// Either way a kill at any instant leaves `dest` complete (old or new) or recoverable.
void replace_dir_atomic(const std::string& tmp, const std::string& dest);
// The name a replaced directory is kept under while its replacement is renamed in.
std::string replaced_dir_aside(const std::string& dest);
// After a kill inside replace_dir_atomic: a `.old_<name>` left beside `dest` is deleted when
// `dest` exists, else renamed back to `dest`. Returns a line saying what was done ("" if nothing).
std::string recover_replaced_dir(const std::string& dest);

}  // namespace minivlm
