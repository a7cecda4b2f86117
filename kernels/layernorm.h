// Launchers of kernels/layernorm.cuh: y = (x − mean) / sqrt(var + eps) · weight + bias over each
// row, forward and backward.
#pragma once

#include "kernels/launchers.h"
#include "kernels/rmsnorm.h"

namespace minivlm::kernels {

// The weight and the bias gradient each take rmsnorm's scratch rows (kNormBackwardBlocks).
inline constexpr std::size_t layernorm_backward_scratch_floats(int N, int C) {
  return 2 * rmsnorm_backward_scratch_floats(N, C);
}

}  // namespace minivlm::kernels

// clang-format off
MINIVLM_KERNEL_LAUNCHERS(
// out [N, C], mean [N], rstd [N] (both may be null), inp [N, C], weight [C], bias [C]
template <typename T>
void layernorm_forward(T* out, float* mean, float* rstd, const T* inp, const T* weight,
                       const T* bias, int N, int C, float eps, cudaStream_t stream,
                       int block_size = 256);
// dinp [N, C], dweight [C], dbias [C], scratch [layernorm_backward_scratch_floats(N, C)]
template <typename T>
void layernorm_backward(T* dinp, T* dweight, T* dbias, float* scratch, const T* dout, const T* inp,
                        const T* weight, const float* mean, const float* rstd, int N, int C,
                        cudaStream_t stream, int block_size = 256);
)
// clang-format on
