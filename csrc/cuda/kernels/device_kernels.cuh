// Definitions of cuda/kernels/launchers.inc, compiled once per back-end: by g++ against the SIMT
// emulator (cuda/kernels/device_kernels_emu.cpp) and by nvcc for the GPU.
//
// binary, scale: grid-stride loops, one element per thread step; memory-bound. sum_dim: one
// thread per output element, sequential over n.
// softmax: one block per row, block max and sum (reduce.cuh), 2 reads + 1 write per element.
#pragma once

#include <cmath>

#include "cuda/kernels/device_kernels.h"
#include "kernels/reduce.cuh"

namespace minivlm::cuda::kern::MINIVLM_KERNEL_BACKEND {

using kernels::MINIVLM_KERNEL_BACKEND::block_reduce;
using kernels::MINIVLM_KERNEL_BACKEND::block_sum;
using kernels::MINIVLM_KERNEL_BACKEND::from_float;
using kernels::MINIVLM_KERNEL_BACKEND::grid_stride_blocks;
using kernels::MINIVLM_KERNEL_BACKEND::MaxOp;
using kernels::MINIVLM_KERNEL_BACKEND::require_block_size;
using kernels::MINIVLM_KERNEL_BACKEND::to_float;

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
__global__ void softmax_forward_kernel(T* out, const T* inp, int n) {
  const std::size_t row = static_cast<std::size_t>(blockIdx.x) * static_cast<std::size_t>(n);
  const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
  float mx = -INFINITY;
  for (int c = tid; c < n; c += threads) mx = fmaxf(mx, to_float(inp[row + c]));
  mx = block_reduce(mx, MaxOp{}, -INFINITY);
  float sum = 0.0f;
  for (int c = tid; c < n; c += threads) sum += expf(to_float(inp[row + c]) - mx);
  const float inv = 1.0f / block_sum(sum);
  for (int c = tid; c < n; c += threads)
    out[row + c] = from_float<T>(expf(to_float(inp[row + c]) - mx) * inv);
}

template <typename T>
__global__ void softmax_backward_kernel(T* dinp, const T* dout, const T* out, int n) {
  const std::size_t row = static_cast<std::size_t>(blockIdx.x) * static_cast<std::size_t>(n);
  const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
  float dot = 0.0f;
  for (int c = tid; c < n; c += threads) dot += to_float(out[row + c]) * to_float(dout[row + c]);
  dot = block_sum(dot);
  for (int c = tid; c < n; c += threads)
    dinp[row + c] = from_float<T>(to_float(out[row + c]) * (to_float(dout[row + c]) - dot));
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

template <typename T>
void softmax_forward(T* out, const T* inp, int rows, int n, cudaStream_t stream, int block_size) {
  require_block_size("softmax_forward", block_size);
  if (rows == 0 || n == 0) return;
  simt::launch(softmax_forward_kernel<T>, rows, block_size, 0, stream, out, inp, n);
}

template <typename T>
void softmax_backward(T* dinp, const T* dout, const T* out, int rows, int n, cudaStream_t stream,
                      int block_size) {
  require_block_size("softmax_backward", block_size);
  if (rows == 0 || n == 0) return;
  simt::launch(softmax_backward_kernel<T>, rows, block_size, 0, stream, dinp, dout, out, n);
}

MINIVLM_INSTANTIATE_STORAGE_TYPES(binary)
MINIVLM_INSTANTIATE_STORAGE_TYPES(scale)
MINIVLM_INSTANTIATE_STORAGE_TYPES(sum_dim)
MINIVLM_INSTANTIATE_STORAGE_TYPES(softmax_forward)
MINIVLM_INSTANTIATE_STORAGE_TYPES(softmax_backward)

}  // namespace minivlm::cuda::kern::MINIVLM_KERNEL_BACKEND
