// Launchers of kernels/global_norm.cuh: the deterministic global L2 norm of the gradients, the
// clipping it drives, and the one-block sum of an fp32 vector.
#pragma once

#include <algorithm>

#include "kernels/launchers.h"

namespace minivlm::kernels {

// The global gradient norm writes one partial sum per block; a tensor of n elements uses this many
// blocks (so the host can size the partials buffer and place the next tensor's partials).
inline constexpr int kGlobalNormMaxBlocks = 1024;
inline constexpr int kGlobalNormBlockSize = 512;
inline constexpr int global_norm_partial_count(std::size_t n,
                                               int block_size = kGlobalNormBlockSize) {
  const std::size_t blocks =
      (n + static_cast<std::size_t>(block_size) - 1) / static_cast<std::size_t>(block_size);
  return static_cast<int>(std::clamp<std::size_t>(blocks, 1, kGlobalNormMaxBlocks));
}

}  // namespace minivlm::kernels

// clang-format off
MINIVLM_KERNEL_LAUNCHERS(
// Writes global_norm_partial_count(n, block_size) partial sums of squares of x [n] to partials
// and returns that count; call once per gradient tensor, each at the next free partials slot.
template <typename T>
int global_norm_partials(float* partials, const T* x, std::size_t n, cudaStream_t stream,
                         int block_size = kGlobalNormBlockSize);
// out[0] = sqrt(Σ partials[0 .. count)), out[1] = the clipping factor: max_norm / (norm + 1e-6)
// if max_norm > 0 and norm > max_norm, else 1. One block, fixed order.
void global_norm_finish(float* out, const float* partials, int count, float max_norm,
                        cudaStream_t stream, int block_size = 1024);
// x[i] ·= *factor (a device scalar).
template <typename T>
void scale_inplace(T* x, std::size_t n, const float* factor, cudaStream_t stream,
                   int block_size = 256);
// out[0] = Σ in[0 .. n), one block, fixed order (e.g. the per-row losses).
void reduce_sum(float* out, const float* in, int n, cudaStream_t stream, int block_size = 1024);
)
// clang-format on
