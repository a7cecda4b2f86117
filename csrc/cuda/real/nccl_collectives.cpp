// NCCL collectives for the `cuda` device: one GPU per local rank, the ncclUniqueId made by rank 0
// and broadcast over the host communicator.
//
// Streams. Collectives run on a stream of their own, ordered after the work already queued on the
// default stream (where the buffers were written) by an event. Completion is polled on the host
// through an event and ncclCommGetAsyncError: a peer lost mid-collective becomes an error that
// ends the job instead of a wait without end.
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>

#include "core/error.h"
#include "dist/communicator.h"
#include "dist/device_collectives.h"

namespace minivlm::cuda {

namespace {

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::f32:
      return ncclFloat32;
    case DType::f64:
      return ncclFloat64;
    case DType::bf16:
      return ncclBfloat16;
    case DType::f16:
      return ncclFloat16;
    case DType::i32:
      return ncclInt32;
    case DType::i64:
      return ncclInt64;
  }
  MV_FAIL("NCCL collectives: unsupported dtype ", dtype_name(t));
}

void cuda_check(cudaError_t e, const char* what) {
  MV_CHECK(e == cudaSuccess, what, " failed: ", cudaGetErrorString(e));
}

void nccl_check(ncclResult_t r, const char* what) {
  MV_CHECK(r == ncclSuccess, what, " failed: ", ncclGetErrorString(r));
}

class NcclEvent final : public CollectiveEvent {
 public:
  NcclEvent(ncclComm_t comm, cudaEvent_t done) : comm_(comm), done_(done) {}
  ~NcclEvent() override { cudaEventDestroy(done_); }

  bool done() override {
    const cudaError_t e = cudaEventQuery(done_);
    if (e == cudaSuccess) return true;
    MV_CHECK(e == cudaErrorNotReady, "NCCL collective: ", cudaGetErrorString(e));
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm_, &async);
    MV_CHECK(async == ncclSuccess || async == ncclInProgress,
             "NCCL asynchronous error: ", ncclGetErrorString(async));
    return false;
  }

 private:
  ncclComm_t comm_;
  cudaEvent_t done_;
};

class NcclCollectives final : public Collectives {
 public:
  NcclCollectives(Communicator& host, int local_rank) {
    int devices = 0;
    const cudaError_t e = cudaGetDeviceCount(&devices);
    MV_CHECK(e == cudaSuccess && devices > 0, "no GPU is visible to this process (local rank ",
             local_rank,
             "): ", e == cudaSuccess ? "the driver reports no device" : cudaGetErrorString(e));
    MV_CHECK(local_rank < devices, "local rank ", local_rank, " needs GPU ", local_rank,
             " but this host shows ", devices, "; HINT: start at most ", devices,
             " processes per host (mpirun --map-by ppr:", devices, ":node)");
    cuda_check(cudaSetDevice(local_rank), "cudaSetDevice");
    ncclUniqueId id{};
    if (host.is_main()) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    std::string blob(reinterpret_cast<const char*>(&id), sizeof id);
    host.broadcast(blob, 0);
    std::memcpy(&id, blob.data(), sizeof id);
    nccl_check(ncclCommInitRank(&comm_, host.world_size(), id, host.rank()), "ncclCommInitRank");
    cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  ~NcclCollectives() override {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  std::string name() const override { return "nccl"; }

  std::unique_ptr<CollectiveEvent> all_reduce_sum(const std::vector<DeviceBuffer>& bufs) override {
    return enqueue([&] {
      for (const DeviceBuffer& b : bufs)
        nccl_check(
            ncclAllReduce(b.data, b.data, b.count, nccl_type(b.dtype), ncclSum, comm_, stream_),
            "ncclAllReduce");
    });
  }

  std::unique_ptr<CollectiveEvent> broadcast(const std::vector<DeviceBuffer>& bufs,
                                             int root) override {
    return enqueue([&] {
      for (const DeviceBuffer& b : bufs)
        nccl_check(ncclBroadcast(b.data, b.data, b.count, nccl_type(b.dtype), root, comm_, stream_),
                   "ncclBroadcast");
    });
  }

  void abort() noexcept override {
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
  }

 private:
  // Queues `issue` (NCCL calls on stream_) after the default stream's work, as one NCCL group.
  template <typename Issue>
  std::unique_ptr<CollectiveEvent> enqueue(Issue issue) {
    cudaEvent_t ready = nullptr, done = nullptr;
    cuda_check(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), "cudaEventCreate");
    cuda_check(cudaEventRecord(ready, nullptr), "cudaEventRecord");
    cuda_check(cudaStreamWaitEvent(stream_, ready, 0), "cudaStreamWaitEvent");
    cudaEventDestroy(ready);
    nccl_check(ncclGroupStart(), "ncclGroupStart");
    issue();
    nccl_check(ncclGroupEnd(), "ncclGroupEnd");
    cuda_check(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate");
    cuda_check(cudaEventRecord(done, stream_), "cudaEventRecord");
    return std::make_unique<NcclEvent>(comm_, done);
  }

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

// NCCL over GPU `local_rank`; throws when this rank cannot join (no GPU, fewer GPUs than processes
// on the host).
const bool registered = [] {
  register_device_collectives(
      DeviceType::cuda, [](Communicator& host, int local_rank) -> std::unique_ptr<Collectives> {
        return std::make_unique<NcclCollectives>(host, local_rank);
      });
  return true;
}();

}  // namespace

}  // namespace minivlm::cuda
