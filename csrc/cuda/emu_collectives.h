// In-process collectives for the emulated device: ranks are threads of one process that share an
// InProcessGroup. A thread joins a group with a RankBinding; the emulated runtime's all_reduce_sum
// then reduces with the other ranks of its group, like NCCL would across processes.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <vector>

namespace minivlm::cuda {

class InProcessGroup {
 public:
  explicit InProcessGroup(int world_size);
  int world_size() const { return world_; }
  // Every rank calls this with the same count; each returns with the sum over ranks, added in
  // rank order (the same bits on every rank and every run).
  void all_reduce_sum(int rank, float* buf, std::size_t count);

 private:
  void arrive_and_wait(std::unique_lock<std::mutex>& lock);

  int world_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<float*> bufs_;
  int arrived_ = 0;
  long generation_ = 0;
};

// Binds the calling thread to (group, rank) for its scope.
class RankBinding {
 public:
  RankBinding(InProcessGroup& group, int rank);
  ~RankBinding();
  RankBinding(const RankBinding&) = delete;
  RankBinding& operator=(const RankBinding&) = delete;
};

// The calling thread's group and rank; null when it is bound to none (a single process).
InProcessGroup* bound_group();
int bound_rank();

}  // namespace minivlm::cuda
