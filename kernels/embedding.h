// Launchers of kernels/embedding.cuh: out[i] = weight[ids[i]], and its backward.
#pragma once

#include "kernels/launchers.h"

// clang-format off
MINIVLM_KERNEL_LAUNCHERS(
// out [N, C], ids [N] in [0, V) (an id outside gives a zero row), weight [V, C]
template <typename T>
void embedding_forward(T* out, const int* ids, const T* weight, int N, int V, int C,
                       cudaStream_t stream, int block_size = 256);
// dweight [V, C] (every row written): dweight[v] = Σ dout[i] over i with ids[i] = v, in order of i.
template <typename T>
void embedding_backward(T* dweight, const T* dout, const int* ids, int N, int V, int C,
                        cudaStream_t stream, int block_size = 256);
)
// clang-format on
