// Element-wise arithmetic and a sum over one dimension, the CUDA back-end's basic tensor ops:
//   binary:  out[i] = a[i] op b[i], op ∈ {+, −, ·}  (the host broadcasts first)
//   scale:   out[i] = a[i] · s, s a host scalar
//   sum_dim: out[o, j] = Σ_k in[o, k, j] over the middle dimension of [outer, n, inner], in order
//            of k (the backward of a broadcast)
//
// binary and scale: grid-stride loops, one element per thread per step. Bytes per element: binary
// reads 2·sizeof(T) and writes sizeof(T), scale reads and writes sizeof(T); 1 FLOP: memory-bound,
// in bf16 ~1.8 ns (binary) and ~1.2 ns (scale) per 1K elements at H100 bandwidth (~3.35 TB/s).
// sum_dim: one thread per output element, sequential over n. Reads outer·n·inner·sizeof(T) once,
// coalesced when inner ≥ 32 (neighbouring threads read neighbouring j), strided by n when inner
// is 1; 1 FLOP per element read. Only outer·inner threads work, so a sum of many rows into few
// outputs is latency-bound (bias gradients use column_sum, bias.cuh).
//
// Launch: grid-stride, grid ⌈count / 256⌉ (capped at 65535; count = n, or outer·inner for
// sum_dim), block 256, no shared memory. Worked example (H100 roofline: 3.35 TB/s HBM, 67 TFLOP/s
// fp32 non-tensor), the residual add of minimind2-small (C = 512), B = 4, T = 512: n = 2048·512 =
// 1 M, bf16: binary 6 B·n = 6.3 MB → 1.9 µs.
#pragma once

#include "kernels/common.cuh"
#include "kernels/elementwise.h"

namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND {

__device__ __forceinline__ std::size_t global_thread() {
  return static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ std::size_t grid_threads() {
  return static_cast<std::size_t>(gridDim.x) * blockDim.x;
}

template <typename T>
__global__ void binary_kernel(T* out, const T* a, const T* b, std::size_t n, BinaryOp op) {
  for (std::size_t i = global_thread(); i < n; i += grid_threads()) {
    const float x = to_float(a[i]), y = to_float(b[i]);
    const float r = op == BinaryOp::add ? x + y : op == BinaryOp::sub ? x - y : x * y;
    out[i] = from_float<T>(r);
  }
}

template <typename T>
__global__ void scale_kernel(T* out, const T* a, float s, std::size_t n) {
  for (std::size_t i = global_thread(); i < n; i += grid_threads())
    out[i] = from_float<T>(to_float(a[i]) * s);
}

template <typename T>
__global__ void sum_dim_kernel(T* out, const T* in, int64_t outer, int64_t n, int64_t inner) {
  const std::size_t total = static_cast<std::size_t>(outer * inner);
  for (std::size_t idx = global_thread(); idx < total; idx += grid_threads()) {
    const int64_t o = static_cast<int64_t>(idx) / inner, j = static_cast<int64_t>(idx) % inner;
    float acc = 0.0f;
    for (int64_t k = 0; k < n; ++k) acc += to_float(in[(o * n + k) * inner + j]);
    out[idx] = from_float<T>(acc);
  }
}

template <typename T>
void binary(T* out, const T* a, const T* b, std::size_t n, BinaryOp op, cudaStream_t stream,
            int block_size) {
  require_block_size("binary", block_size);
  if (n == 0) return;
  simt::launch(binary_kernel<T>, grid_stride_blocks(n, block_size), block_size, 0, stream, out, a,
               b, n, op);
}

template <typename T>
void scale(T* out, const T* a, float s, std::size_t n, cudaStream_t stream, int block_size) {
  require_block_size("scale", block_size);
  if (n == 0) return;
  simt::launch(scale_kernel<T>, grid_stride_blocks(n, block_size), block_size, 0, stream, out, a, s,
               n);
}

template <typename T>
void sum_dim(T* out, const T* in, int64_t outer, int64_t n, int64_t inner, cudaStream_t stream,
             int block_size) {
  require_block_size("sum_dim", block_size);
  const std::size_t total = static_cast<std::size_t>(outer * inner);
  if (total == 0) return;
  simt::launch(sum_dim_kernel<T>, grid_stride_blocks(total, block_size), block_size, 0, stream, out,
               in, outer, n, inner);
}

MINIVLM_INSTANTIATE_STORAGE_TYPES(binary)
MINIVLM_INSTANTIATE_STORAGE_TYPES(scale)
MINIVLM_INSTANTIATE_STORAGE_TYPES(sum_dim)

}  // namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND
