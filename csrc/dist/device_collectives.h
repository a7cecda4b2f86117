// Collectives of a device among the processes of a data-parallel job (one device per process):
// in-place sums and broadcasts of device memory, queued after the work already on the device's
// default stream, where the buffers were written. A back-end registers how a rank joins them for
// its device type: the CUDA back-end NCCL for `cuda` (cuda/real/nccl_collectives.cpp, MINIVLM_CUDA
// builds) and, for `cuda-emu`, an emulation that moves the buffers (host memory) over the job's
// host communicator (cuda/emu_collectives.cpp). The device communicator (device_communicator.cpp)
// is their user: it splits tensors between these and the host communicator.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

#include "core/device.h"

namespace minivlm {

class Communicator;

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

// Joins this rank to the device collectives beside `host` (which carries their bootstrap and must
// outlive the result); local_rank is this process's index on its host. Throws when this rank
// cannot join.
using JoinDeviceCollectives = std::unique_ptr<Collectives> (*)(Communicator& host, int local_rank);
void register_device_collectives(DeviceType type, JoinDeviceCollectives join);
// The registered join of `type`, or null.
JoinDeviceCollectives device_collectives(DeviceType type);

}  // namespace minivlm
