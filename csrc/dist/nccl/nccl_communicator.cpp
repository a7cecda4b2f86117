// NCCL communicator for GPU tensors: one GPU per local rank, the ncclUniqueId made by rank 0 and
// broadcast over the MPI host communicator, which also serves CPU tensors, strings and barriers.
//
// Streams. Collectives run on a stream of their own, ordered after the work already queued on the
// default stream (where the tensors were written) by an event. Completion is awaited on the host
// by polling the event and ncclCommGetAsyncError: a peer lost mid-collective becomes an error that
// ends the job instead of a wait without end.
#if defined(MINIVLM_HAVE_CUDA) && defined(MINIVLM_HAVE_MPI)
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "dist/engines.h"

namespace minivlm {

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

class NcclCommunicator;

class NcclPending final : public PendingCollective {
 public:
  NcclPending(NcclCommunicator& comm, cudaEvent_t done) : comm_(comm), done_(done) {}
  ~NcclPending() override { cudaEventDestroy(done_); }
  bool test() override;
  void wait() override;

 private:
  NcclCommunicator& comm_;
  cudaEvent_t done_;
};

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(std::unique_ptr<Communicator> host) : host_(std::move(host)) {
    try {
      join();
    } catch (const std::exception& e) {
      host_->abort(std::string("NCCL: ") + e.what());
    }
  }
  ~NcclCommunicator() override {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  int rank() const override { return host_->rank(); }
  int world_size() const override { return host_->world_size(); }
  std::string name() const override { return "nccl"; }

  void all_reduce_sum(const std::vector<Tensor>& tensors) override {
    std::vector<Tensor> gpu, cpu;
    for (const Tensor& t : tensors) (t.device().is_cpu() ? cpu : gpu).push_back(t);
    if (!gpu.empty()) {
      enqueue([&] {
        for (const Tensor& t : gpu)
          nccl_check(ncclAllReduce(t.raw_data(), t.raw_data(), count(t), nccl_type(t.dtype()),
                                   ncclSum, comm_, stream_),
                     "ncclAllReduce");
      })->wait();
    }
    if (!cpu.empty()) host_->all_reduce_sum(cpu);
  }
  void all_reduce_sum(std::vector<double>& values) override { host_->all_reduce_sum(values); }
  std::unique_ptr<PendingCollective> start_all_reduce_sum(const Tensor& t) override {
    if (t.device().is_cpu()) return host_->start_all_reduce_sum(t);
    return enqueue([&] {
      nccl_check(ncclAllReduce(t.raw_data(), t.raw_data(), count(t), nccl_type(t.dtype()), ncclSum,
                               comm_, stream_),
                 "ncclAllReduce");
    });
  }
  void broadcast(const std::vector<Tensor>& tensors, int root) override {
    std::vector<Tensor> gpu, cpu;
    for (const Tensor& t : tensors) (t.device().is_cpu() ? cpu : gpu).push_back(t);
    if (!gpu.empty()) {
      enqueue([&] {
        for (const Tensor& t : gpu)
          nccl_check(ncclBroadcast(t.raw_data(), t.raw_data(), count(t), nccl_type(t.dtype()), root,
                                   comm_, stream_),
                     "ncclBroadcast");
      })->wait();
    }
    if (!cpu.empty()) host_->broadcast(cpu, root);
  }
  void broadcast(std::string& text, int root) override { host_->broadcast(text, root); }
  std::vector<std::string> all_gather(const std::string& text) override {
    return host_->all_gather(text);
  }
  void barrier() override { host_->barrier(); }
  [[noreturn]] void abort(const std::string& message) override {
    // Frees the peers' NCCL kernels from waiting on this rank before MPI ends the job.
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
    host_->abort(message);
    std::_Exit(1);  // not reached: the compiler cannot see [[noreturn]] through a virtual call
  }

  // Polled while waiting: an asynchronous NCCL error (a lost peer, a network failure) ends the job.
  void check_async() {
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm_, &async);
    if (async != ncclSuccess && async != ncclInProgress)
      abort(std::string("NCCL asynchronous error: ") + ncclGetErrorString(async));
  }

 private:
  void join() {
    const int local = launched_local_rank();
    int devices = 0;
    const cudaError_t e = cudaGetDeviceCount(&devices);
    MV_CHECK(e == cudaSuccess && devices > 0, "no GPU is visible to this process (local rank ",
             local,
             "): ", e == cudaSuccess ? "the driver reports no device" : cudaGetErrorString(e));
    MV_CHECK(local < devices, "local rank ", local, " needs GPU ", local, " but this host shows ",
             devices, "; HINT: start at most ", devices,
             " processes per host (mpirun --map-by ppr:", devices, ":node)");
    cuda_check(cudaSetDevice(local), "cudaSetDevice");
    ncclUniqueId id{};
    if (host_->is_main()) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    std::string blob(reinterpret_cast<const char*>(&id), sizeof id);
    host_->broadcast(blob, 0);
    std::memcpy(&id, blob.data(), sizeof id);
    nccl_check(ncclCommInitRank(&comm_, host_->world_size(), id, host_->rank()),
               "ncclCommInitRank");
    cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }

  static size_t count(const Tensor& t) {
    MV_CHECK(t.device().type == DeviceType::cuda && t.is_contiguous(),
             "NCCL collectives need contiguous cuda tensors, got ", t.desc());
    return static_cast<size_t>(t.numel());
  }

  // Queues `issue` (NCCL calls on stream_) after the default stream's work, as one NCCL group.
  template <typename Issue>
  std::unique_ptr<PendingCollective> enqueue(Issue issue) {
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
    return std::make_unique<NcclPending>(*this, done);
  }

  std::unique_ptr<Communicator> host_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

bool NcclPending::test() {
  const cudaError_t e = cudaEventQuery(done_);
  if (e == cudaSuccess) return true;
  if (e != cudaErrorNotReady) comm_.abort(std::string("NCCL collective: ") + cudaGetErrorString(e));
  comm_.check_async();
  return false;
}

void NcclPending::wait() {
  while (!test()) std::this_thread::yield();
}

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> host) {
  return std::make_unique<NcclCommunicator>(std::move(host));
}

}  // namespace minivlm
#endif
