// Collectives of a CUDA back-end device among the processes of a data-parallel job (one device per
// process): in-place sums and broadcasts of device memory, queued after the work already on the
// device's default stream, where the buffers were written. Two implementations: NCCL for `cuda`
// (real/nccl_collectives.cpp, MINIVLM_CUDA builds) and, for `cuda-emu`, an emulation that moves
// the buffers (host memory) over the job's host communicator (emu_collectives.cpp). dist/'s device
// communicator is their user: it splits tensors between these and the host communicator.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace minivlm {
class Communicator;
}

namespace minivlm::cuda {

// `count` contiguous elements of `dtype` at `data`, in device memory.
struct DeviceBuffer {
  void* data = nullptr;
  std::size_t count = 0;
  DType dtype = DType::f32;
};

// The completion of queued collectives.
class CollectiveEvent {
 public:
  virtual ~CollectiveEvent() = default;
  // True once the results are in device memory; never blocks. Throws minivlm::Error when the
  // collectives failed (a peer lost mid-collective): the job cannot go on.
  virtual bool done() = 0;
};

// Every rank queues the same collectives in the same order, with the same counts and dtypes.
class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual std::string name() const = 0;  // "nccl", "nccl-emu"

  // In place, each buffer becomes the sum over ranks (the same bits on every rank).
  virtual std::unique_ptr<CollectiveEvent> all_reduce_sum(
      const std::vector<DeviceBuffer>& bufs) = 0;
  // In place, each buffer becomes root's.
  virtual std::unique_ptr<CollectiveEvent> broadcast(const std::vector<DeviceBuffer>& bufs,
                                                     int root) = 0;
  // Frees the peers waiting on this rank inside device collectives; the job is about to end.
  virtual void abort() noexcept = 0;
};

// NCCL over GPU `local_rank` (this process's index on its host), its id made by rank 0 and
// broadcast over `host`, which must outlive the result. Throws when this rank cannot join (no GPU,
// fewer GPUs than processes on the host). Defined in MINIVLM_CUDA builds only.
std::unique_ptr<Collectives> join_nccl(Communicator& host, int local_rank);

// The emulated device's collectives: each runs when queued (the emulated stream is the calling
// thread) as host collectives of `host`, which must outlive the result. Sums add the ranks' values
// in rank order, rounding to the storage type after each addition as NCCL's reductions do.
std::unique_ptr<Collectives> join_emulated(Communicator& host);

}  // namespace minivlm::cuda
