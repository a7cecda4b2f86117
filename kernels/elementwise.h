// Launchers of kernels/elementwise.cuh: element-wise arithmetic on two tensors of one shape,
// scaling by a host scalar, and the sum over the middle dimension of a [outer, n, inner] tensor.
#pragma once

#include "kernels/launchers.h"

namespace minivlm::kernels {

enum class BinaryOp : int { add, sub, mul };

}  // namespace minivlm::kernels

// clang-format off
MINIVLM_KERNEL_LAUNCHERS(
// out [n] = a op b element-wise (out may alias a or b); out [n] = a · s.
template <typename T>
void binary(T* out, const T* a, const T* b, std::size_t n, BinaryOp op, cudaStream_t stream,
            int block_size = 256);
template <typename T>
void scale(T* out, const T* a, float s, std::size_t n, cudaStream_t stream, int block_size = 256);
// out [outer, inner] = Σ over the middle dimension of in [outer, n, inner], in order of n.
template <typename T>
void sum_dim(T* out, const T* in, int64_t outer, int64_t n, int64_t inner, cudaStream_t stream,
             int block_size = 256);
)
// clang-format on
