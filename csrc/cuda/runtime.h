// The runtime interface the CUDA back-end's host code talks to (docs/SIMT.md, "Host side"): device
// memory, copies, in-order streams and row-major GEMM (collectives among processes:
// dist/device_collectives.h). Two implementations: the real one (cudart, cuBLAS; csrc/cuda/real/,
// MINIVLM_CUDA builds) for the `cuda` device and the emulated one (host memory, CPU GEMM) for
// `cuda-emu`, present in every build.
//
// Kernels are chosen by device as well: cuda/backend.h's MV_KERNEL calls kernels::gpu or
// kernels::emu.
#pragma once
#include <cstddef>
#include <cstdint>

#include <driver_types.h>

#include "core/device.h"
#include "core/dtype.h"

namespace minivlm::cuda {

class Runtime {
 public:
  virtual ~Runtime() = default;

  // Device memory. A null pointer is never returned; failures throw minivlm::Error.
  virtual void* malloc(std::size_t nbytes) = 0;
  virtual void free(void* p) = 0;

  // Copies are ordered on `stream` (null: the default stream); the host-side ones return once
  // the host buffer may be reused or read.
  virtual void copy_h2d(void* dst, const void* src, std::size_t nbytes, cudaStream_t stream) = 0;
  virtual void copy_d2h(void* dst, const void* src, std::size_t nbytes, cudaStream_t stream) = 0;
  virtual void copy_d2d(void* dst, const void* src, std::size_t nbytes, cudaStream_t stream) = 0;

  // In-order streams: work on one stream runs in submission order.
  virtual cudaStream_t create_stream() = 0;
  virtual void destroy_stream(cudaStream_t stream) = 0;
  virtual void synchronize(cudaStream_t stream) = 0;

  // Row-major C[m, n] = alpha · op(A) · op(B) + beta · C, op(A) [m, k], op(B) [k, n], leading
  // dimensions in elements, `batch` matrices at element strides stride_a/b/c. `dtype` is f32 or
  // bf16 (bf16 storage, fp32 accumulation; the emulated side converts through f32).
  struct Gemm {
    DType dtype = DType::f32;
    bool trans_a = false, trans_b = false;
    int64_t m = 0, n = 0, k = 0;
    float alpha = 1.0f, beta = 0.0f;
    const void* a = nullptr;
    int64_t lda = 0, stride_a = 0;
    const void* b = nullptr;
    int64_t ldb = 0, stride_b = 0;
    void* c = nullptr;
    int64_t ldc = 0, stride_c = 0;
    int64_t batch = 1;
  };
  virtual void gemm(const Gemm& g, cudaStream_t stream) = 0;
};

// The runtime of a CUDA back-end device (cuda or cuda-emu); an error names a device that has none.
Runtime& runtime_for(Device device);

// The emulated runtime, always present (its file registers the cuda-emu allocator).
Runtime& emulated_runtime();
// The real runtime; null in builds without MINIVLM_CUDA and on machines without a GPU.
Runtime* real_runtime();

// A tensor-core allocator over a runtime's memory and default-stream copies.
class RuntimeAllocator final : public DeviceAllocator {
 public:
  explicit RuntimeAllocator(Runtime& rt) : rt_(rt) {}
  void* allocate(size_t n) override { return rt_.malloc(n); }
  void deallocate(void* p) override { rt_.free(p); }
  void copy_from_host(void* d, const void* s, size_t n) override { rt_.copy_h2d(d, s, n, nullptr); }
  void copy_to_host(void* d, const void* s, size_t n) override { rt_.copy_d2h(d, s, n, nullptr); }
  void copy_on_device(void* d, const void* s, size_t n) override { rt_.copy_d2d(d, s, n, nullptr); }

 private:
  Runtime& rt_;
};

}  // namespace minivlm::cuda
