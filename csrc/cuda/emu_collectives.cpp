#include "cuda/emu_collectives.h"

#include "core/error.h"

namespace minivlm::cuda {

namespace {
thread_local InProcessGroup* t_group = nullptr;
thread_local int t_rank = 0;
}  // namespace

InProcessGroup::InProcessGroup(int world_size)
    : world_(world_size), bufs_(static_cast<std::size_t>(world_size), nullptr) {
  MV_CHECK(world_size >= 1, "InProcessGroup: world size ", world_size, " is not positive");
}

void InProcessGroup::arrive_and_wait(std::unique_lock<std::mutex>& lock) {
  const long gen = generation_;
  if (++arrived_ == world_) {
    arrived_ = 0;
    ++generation_;
    cv_.notify_all();
    return;
  }
  cv_.wait(lock, [&] { return generation_ != gen; });
}

void InProcessGroup::all_reduce_sum(int rank, float* buf, std::size_t count) {
  MV_CHECK(rank >= 0 && rank < world_, "all_reduce_sum: rank ", rank, " outside a group of ",
           world_);
  std::unique_lock<std::mutex> lock(mu_);
  bufs_[static_cast<std::size_t>(rank)] = buf;
  arrive_and_wait(lock);
  // Rank 0 sums every buffer in rank order into its own, then the others copy it.
  if (rank == 0) {
    for (int r = 1; r < world_; ++r) {
      const float* src = bufs_[static_cast<std::size_t>(r)];
      for (std::size_t i = 0; i < count; ++i) buf[i] += src[i];
    }
  }
  arrive_and_wait(lock);
  if (rank != 0) {
    const float* sum = bufs_[0];
    for (std::size_t i = 0; i < count; ++i) buf[i] = sum[i];
  }
  // Rank 0's buffer must outlive the copies above.
  arrive_and_wait(lock);
}

RankBinding::RankBinding(InProcessGroup& group, int rank) {
  MV_CHECK(rank >= 0 && rank < group.world_size(), "RankBinding: rank ", rank,
           " outside a group of ", group.world_size());
  t_group = &group;
  t_rank = rank;
}

RankBinding::~RankBinding() {
  t_group = nullptr;
  t_rank = 0;
}

InProcessGroup* bound_group() { return t_group; }
int bound_rank() { return t_rank; }

}  // namespace minivlm::cuda
