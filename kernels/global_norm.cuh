// The global L2 norm of all gradients and the clipping it drives, deterministically:
//   pass 1, per gradient tensor: global_norm_partial_count(n) blocks each sum the squares of a
//     fixed grid-stride share of its elements (fp32) and write one partial sum;
//   pass 2, one block: sums all tensors' partials in a fixed order, writes the norm and the
//     clipping factor max_norm / (norm + 1e-6) (1 when the norm is within max_norm).
// No atomics: the bits depend on the tensor sizes and block size only, never on scheduling.
// Clipping multiplies by the factor from device memory (scale_inplace, or AdamW's grad_scale),
// so nothing waits for the host. reduce_sum is pass 2 alone, for any fp32 vector (the losses).
//
// Launch shapes and costs: pass 1 grid-strides with up to kGlobalNormMaxBlocks blocks, reading
// sizeof(T) per element with 2 FLOPs (memory-bound, in bf16 ~0.6 ns per 1K elements on H100);
// pass 2 is one block over the partials (a few µs, latency-bound); scale_inplace reads and
// writes sizeof(T) per element.
//
// Launch: pass 1 grid global_norm_partial_count(n) ≤ 1024, block 512; pass 2 one block of 1024;
// scale_inplace grid-stride, block 256; no dynamic shared memory. Worked example (H100 roofline:
// 3.35 TB/s HBM, 67 TFLOP/s fp32 non-tensor), minimind2-small's ~25.8 M gradients, f32 also for
// bf16 parameters (training accumulates them in f32): pass 1 reads 4 B·n = 103 MB → 31 µs;
// clipping by scale_inplace reads and writes 8 B·n = 206 MB → 62 µs (AdamW's grad_scale avoids
// that pass).
#pragma once

#include "kernels/global_norm.h"
#include "kernels/reduce.cuh"

namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND {

// partials [gridDim.x]
template <typename T>
__global__ void sum_squares_kernel(float* partials, const T* x, std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  float squares = 0.0f;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float v = to_float(x[i]);
    squares += v * v;
  }
  const float total = block_sum(squares);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// One block: out[0] = Σ in; with kNorm, out[0] = sqrt(Σ in) and out[1] = the clipping factor.
template <bool kNorm>
__global__ void single_block_sum_kernel(float* out, const float* in, int n, float max_norm) {
  float sum = 0.0f;
  for (int i = static_cast<int>(threadIdx.x); i < n; i += static_cast<int>(blockDim.x)) {
    sum += in[i];
  }
  const float total = block_sum(sum);
  if (threadIdx.x != 0) return;
  if constexpr (kNorm) {
    const float norm = sqrtf(total);
    out[0] = norm;
    out[1] = max_norm > 0.0f && norm > max_norm ? max_norm / (norm + 1e-6f) : 1.0f;
  } else {
    out[0] = total;
  }
}

template <typename T>
__global__ void scale_kernel(T* x, std::size_t n, const float* factor) {
  const float f = *factor;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    x[i] = from_float<T>(to_float(x[i]) * f);
  }
}

template <typename T>
int global_norm_partials(float* partials, const T* x, std::size_t n, cudaStream_t stream,
                         int block_size) {
  require_block_size("global_norm_partials", block_size);
  const int blocks = global_norm_partial_count(n, block_size);
  simt::launch(sum_squares_kernel<T>, blocks, block_size, 0, stream, partials, x, n);
  return blocks;
}

void global_norm_finish(float* out, const float* partials, int count, float max_norm,
                        cudaStream_t stream, int block_size) {
  require(count >= 0, "global_norm_finish", "needs count >= 0, got " + std::to_string(count));
  require_block_size("global_norm_finish", block_size);
  simt::launch(single_block_sum_kernel<true>, 1, block_size, 0, stream, out, partials, count,
               max_norm);
}

template <typename T>
void scale_inplace(T* x, std::size_t n, const float* factor, cudaStream_t stream, int block_size) {
  require_block_size("scale_inplace", block_size);
  if (n == 0) return;
  simt::launch(scale_kernel<T>, grid_stride_blocks(n, block_size), block_size, 0, stream, x, n,
               factor);
}

void reduce_sum(float* out, const float* in, int n, cudaStream_t stream, int block_size) {
  require(n >= 0, "reduce_sum", "needs n >= 0, got " + std::to_string(n));
  require_block_size("reduce_sum", block_size);
  simt::launch(single_block_sum_kernel<false>, 1, block_size, 0, stream, out, in, n, 0.0f);
}

MINIVLM_INSTANTIATE_STORAGE_TYPES(global_norm_partials)
MINIVLM_INSTANTIATE_STORAGE_TYPES(scale_inplace)

}  // namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND
