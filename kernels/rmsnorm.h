// Launchers of kernels/rmsnorm.cuh: y = weight · x / sqrt(mean(x²) + eps) over each row, plain
// and fused with the residual add of a pre-norm decoder, forward and backward.
#pragma once

#include <algorithm>

#include "kernels/launchers.h"
#include "kernels/reduce.h"

namespace minivlm::kernels {

// Backward passes of the norms (this one and layernorm.h) reduce their weight gradients in two
// deterministic steps: each of at most kNormBackwardBlocks blocks sums its own rows into a scratch
// row, then a column sum adds the scratch rows in order (in one pass: no more than one chunk).
inline constexpr int kNormBackwardBlocks = 256;
static_assert(kNormBackwardBlocks <= kColumnSumChunkRows);
inline constexpr std::size_t rmsnorm_backward_scratch_floats(int N, int C) {
  return static_cast<std::size_t>(std::min(N, kNormBackwardBlocks)) * static_cast<std::size_t>(C);
}

}  // namespace minivlm::kernels

// clang-format off
MINIVLM_KERNEL_LAUNCHERS(
// out [N, C], rstd [N] (may be null), inp [N, C], weight [C]
template <typename T>
void rmsnorm_forward(T* out, float* rstd, const T* inp, const T* weight, int N, int C, float eps,
                     cudaStream_t stream, int block_size = 256);
// residual = x + r (rounded to T), out = rmsnorm(residual): the pre-norm decoder's skip connection.
template <typename T>
void fused_residual_rmsnorm_forward(T* residual, T* out, float* rstd, const T* x, const T* r,
                                    const T* weight, int N, int C, float eps, cudaStream_t stream,
                                    int block_size = 256);
// dinp [N, C], dweight [C], scratch [rmsnorm_backward_scratch_floats(N, C)]
template <typename T>
void rmsnorm_backward(T* dinp, T* dweight, float* scratch, const T* dout, const T* inp,
                      const T* weight, const float* rstd, int N, int C, cudaStream_t stream,
                      int block_size = 256);
// Backward of fused_residual_rmsnorm_forward: the gradient of x and of r (both equal),
// dinp = dresidual + rmsnorm backward of dout at the saved residual.
template <typename T>
void fused_residual_rmsnorm_backward(T* dinp, T* dweight, float* scratch, const T* dresidual,
                                     const T* dout, const T* residual, const T* weight,
                                     const float* rstd, int N, int C, cudaStream_t stream,
                                     int block_size = 256);
)
// clang-format on
