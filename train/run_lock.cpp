#include "train/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

#include "core/error.h"

namespace minivlm {

namespace {

std::string read_all(int fd) {
  std::string out;
  char buf[512];
  for (off_t at = 0;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    at += n;
    if (out.size() > 4096) break;  // a lock file is a few dozen bytes
  }
  return out;
}

// "pid 12 on host h (started T)" from the file's "pid 12\nhost h\nstarted T\n"; other text as
// it is, on one line.
std::string describe_holder(const std::string& text) {
  std::istringstream in(text);
  std::map<std::string, std::string> kv;
  for (std::string line; std::getline(in, line);) {
    const size_t sp = line.find(' ');
    if (sp != std::string::npos) kv[line.substr(0, sp)] = line.substr(sp + 1);
  }
  if (kv.count("pid") && kv.count("host") && kv.count("started"))
    return "pid " + kv["pid"] + " on host " + kv["host"] + " (started " + kv["started"] + ")";
  std::string out = text;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\0')) out.pop_back();
  for (char& c : out)
    if (c == '\n' || c == '\0') c = ' ';
  return out;
}

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

}  // namespace

RunLock::RunLock(const std::string& run_dir)
    : path_((std::filesystem::path(run_dir) / ".lock").string()) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  MV_CHECK(fd_ >= 0, "cannot open the run's lock file ", path_, ": ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    // The holder writes its identity right after locking: give it a moment.
    std::string holder = read_all(fd_);
    for (int i = 0; i < 20 && holder.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      holder = read_all(fd_);
    }
    ::close(fd_);
    fd_ = -1;
    MV_CHECK(err == EWOULDBLOCK, "cannot lock ", path_, ": ", std::strerror(err));
    MV_FAIL("another trainer is running on ", run_dir, ": its lock ", path_, " is held by ",
            holder.empty() ? std::string("a process that has not written its pid yet")
                           : describe_holder(holder),
            "; wait for it or stop it, or choose another --out");
  }
  if (const std::string left = read_all(fd_); !left.empty()) stale_ = describe_holder(left);
  const std::string me = "pid " + std::to_string(::getpid()) + "\nhost " + host_name() +
                         "\nstarted " + now_utc() + "\n";
  const bool written = ::ftruncate(fd_, 0) == 0 &&
                       ::pwrite(fd_, me.data(), me.size(), 0) == static_cast<ssize_t>(me.size());
  MV_CHECK(written, "cannot write the run's lock file ", path_, ": ", std::strerror(errno));
  ::fsync(fd_);
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  // Emptied while still held, so the next run sees no stale holder; closing releases it.
  [[maybe_unused]] const int rc = ::ftruncate(fd_, 0);
  ::close(fd_);
}

}  // namespace minivlm
