#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace minivlm {

namespace fs = std::filesystem;

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    f.flush();
    MV_CHECK(f.good(), "cannot write ", tmp);
  }
  fsync_path(tmp);
  std::filesystem::rename(tmp, path);
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void fsync_tree(const std::string& dir) {
  std::vector<std::string> dirs;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_symlink()) continue;
    if (e.is_regular_file())
      fsync_path(e.path().string());
    else if (e.is_directory())
      dirs.push_back(e.path().string());
  }
  for (const std::string& d : dirs) fsync_path(d);
  fsync_path(dir);
}

std::string replaced_dir_aside(const std::string& dest) {
  const fs::path d(dest);
  return (d.parent_path() / (".old_" + d.filename().string())).string();
}

namespace {

// renameat2(RENAME_EXCHANGE): false where the kernel or file system cannot exchange.
bool exchange(const std::string& a, const std::string& b) {
#if defined(__linux__) && defined(SYS_renameat2)
  constexpr unsigned kRenameExchange = 1u << 1;  // RENAME_EXCHANGE
  if (::syscall(SYS_renameat2, AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), kRenameExchange) == 0)
    return true;
  MV_CHECK(errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP, "cannot exchange '", a,
           "' and '", b, "': ", std::strerror(errno));
#endif
  return false;
}

}  // namespace

void replace_dir_atomic(const std::string& tmp, const std::string& dest) {
  const std::string parent = fs::path(dest).parent_path().string();
  if (!fs::exists(fs::symlink_status(dest))) {
    fs::rename(tmp, dest);
    fsync_path(parent);
    return;
  }
  if (exchange(tmp, dest)) {
    fsync_path(parent);
    fs::remove_all(tmp);  // the old directory
    return;
  }
  const std::string aside = replaced_dir_aside(dest);
  fs::remove_all(aside);
  fs::rename(dest, aside);
  fs::rename(tmp, dest);
  fsync_path(parent);
  fs::remove_all(aside);
}

std::string recover_replaced_dir(const std::string& dest) {
  const std::string aside = replaced_dir_aside(dest);
  if (!fs::exists(fs::symlink_status(aside))) return "";
  if (fs::exists(fs::symlink_status(dest))) {
    fs::remove_all(aside);
    return "removed " + aside + ", the replaced copy of " + dest + " an interrupted save left";
  }
  fs::rename(aside, dest);
  fsync_path(fs::path(dest).parent_path().string());
  return "restored " + dest + " from " + aside + " (a save was interrupted while replacing it)";
}

}  // namespace minivlm
