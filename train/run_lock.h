// One trainer per run directory (SPEC §6): RUN/.lock, held with flock(LOCK_EX) for the whole run.
//
// The file holds the holder's pid, host name and start time. A second trainer on the same RUN fails
// at once with an error naming the holder and the lock's path. The kernel releases the lock when
// its holder dies however it dies, so a crash leaves at most a stale file, which the next run takes
// over with a note (not an error). A clean exit empties the file. flock is advisory and per
// machine on some network file systems: two trainers on different hosts of a file system without
// working flock are not caught. Under mpirun only rank 0 takes it, so two jobs on the same RUN
// collide on their rank 0.
#pragma once
#include <string>

namespace minivlm {

class RunLock {
 public:
  // Creates RUN/.lock if needed and locks it; throws minivlm::Error naming the holder when another
  // process holds it. The run directory must exist.
  explicit RunLock(const std::string& run_dir);
  ~RunLock();  // empties the file and releases the lock
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  const std::string& path() const { return path_; }
  // The holder that died without releasing it, as its file names it ("pid 12 on host h (started
  // 2026-01-02T03:04:05Z)"), or "".
  const std::string& stale() const { return stale_; }

 private:
  std::string path_;
  std::string stale_;
  int fd_ = -1;
};

}  // namespace minivlm
