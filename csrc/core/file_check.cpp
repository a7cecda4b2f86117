#include "core/file_check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace minivlm {

namespace {

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a file";
}

}  // namespace

uint64_t require_regular_file(const std::string& path, const std::string& what) {
  struct stat sb {};
  MV_CHECK(::stat(path.c_str(), &sb) == 0, "cannot open ", what, " ", path, ": ",
           std::strerror(errno));
  MV_CHECK(S_ISREG(sb.st_mode), what, " ", path, " is ", file_kind(sb.st_mode),
           ", not a regular file");
  return static_cast<uint64_t>(sb.st_size);
}

std::string read_regular_file(const std::string& path, const std::string& what,
                              uint64_t max_bytes) {
  const uint64_t size = require_regular_file(path, what);
  MV_CHECK(size <= max_bytes, what, " ", path, " is ", size, " bytes, more than the limit of ",
           max_bytes);
  // Non-blocking: were the path swapped for a FIFO after the check, open() must not wait for a
  // writer. The flag does not change reads of a regular file.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  MV_CHECK(fd >= 0, "cannot open ", what, " ", path, ": ", std::strerror(errno));
  struct stat sb {};
  if (::fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    ::close(fd);
    MV_FAIL(what, " ", path, " is not a regular file");
  }
  std::string out;
  out.resize(static_cast<size_t>(size));
  size_t done = 0;
  // Reads what the file holds now, up to the limit: it may have grown or shrunk since stat.
  for (;;) {
    if (done == out.size()) {
      if (out.size() >= max_bytes) {
        char probe;
        const ssize_t more = ::read(fd, &probe, 1);
        ::close(fd);
        MV_CHECK(more <= 0, what, " ", path, " is more than the limit of ", max_bytes, " bytes");
        return out;
      }
      out.resize(std::min<uint64_t>(max_bytes, out.size() + (out.size() / 2) + 4096));
    }
    const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      MV_FAIL("cannot read ", what, " ", path, ": ", std::strerror(err));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(done);
  return out;
}

}  // namespace minivlm
