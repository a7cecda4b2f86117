// The real runtime behind `cuda`: cudart memory, copies and streams, and cuBLAS GEMM. cuBLAS is
// column-major; a row-major C = op(A)·op(B) is the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, so the wrapper
// swaps the operands (and m with n) and keeps the transpose flags.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <mutex>

#include "core/error.h"
#include "cuda/gpu.h"
#include "cuda/runtime.h"

namespace minivlm::cuda {

namespace {

void check(cudaError_t e, const char* what) {
  MV_CHECK(e == cudaSuccess, what, " failed: ", cudaGetErrorString(e));
}

void check(cublasStatus_t s, const char* what) {
  MV_CHECK(s == CUBLAS_STATUS_SUCCESS, what, " failed: ", cublasGetStatusString(s));
}

class GpuRuntime final : public Runtime {
 public:
  ~GpuRuntime() override {
    if (handle_ != nullptr) cublasDestroy(handle_);
  }

  void* malloc(std::size_t nbytes) override {
    void* p = nullptr;
    check(cudaMalloc(&p, nbytes == 0 ? 1 : nbytes), "cudaMalloc");
    return p;
  }
  void free(void* p) override { cudaFree(p); }

  void copy_h2d(void* d, const void* s, std::size_t n, cudaStream_t stream) override {
    check(cudaMemcpyAsync(d, s, n, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync H2D");
    // Pageable host memory: the caller may reuse `s` as soon as this returns.
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }
  void copy_d2h(void* d, const void* s, std::size_t n, cudaStream_t stream) override {
    check(cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync D2H");
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }
  void copy_d2d(void* d, const void* s, std::size_t n, cudaStream_t stream) override {
    check(cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToDevice, stream), "cudaMemcpyAsync D2D");
  }

  cudaStream_t create_stream() override {
    cudaStream_t s = nullptr;
    check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
    return s;
  }
  void destroy_stream(cudaStream_t s) override { check(cudaStreamDestroy(s), "cudaStreamDestroy"); }
  void synchronize(cudaStream_t s) override {
    check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  }

  void gemm(const Gemm& g, cudaStream_t stream) override {
    MV_CHECK(g.dtype == DType::f32 || g.dtype == DType::bf16, "cuda gemm: unsupported dtype ",
             dtype_name(g.dtype), " (f32 or bf16)");
    if (g.m == 0 || g.n == 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (handle_ == nullptr) check(cublasCreate(&handle_), "cublasCreate");
    check(cublasSetStream(handle_, stream), "cublasSetStream");
    const cudaDataType_t type = g.dtype == DType::f32 ? CUDA_R_32F : CUDA_R_16BF;
    // fp32 GEMMs stay fp32 (no TF32): the CPU back-end is their reference.
    const cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
    check(cublasGemmStridedBatchedEx(
              handle_, g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
              static_cast<int>(g.n), static_cast<int>(g.m), static_cast<int>(g.k), &g.alpha, g.b,
              type, static_cast<int>(g.ldb), g.stride_b, g.a, type, static_cast<int>(g.lda),
              g.stride_a, &g.beta, g.c, type, static_cast<int>(g.ldc), g.stride_c,
              static_cast<int>(g.batch), compute, CUBLAS_GEMM_DEFAULT),
          "cublasGemmStridedBatchedEx");
  }

 private:
  std::mutex mu_;
  cublasHandle_t handle_ = nullptr;
};

}  // namespace

Runtime* real_runtime() {
  if (!gpu_available()) return nullptr;
  static GpuRuntime rt;
  return &rt;
}

}  // namespace minivlm::cuda
