// Launchers of kernels/softmax.cuh: the softmax of each row and its backward.
#pragma once

#include "kernels/launchers.h"

// clang-format off
MINIVLM_KERNEL_LAUNCHERS(
// Row softmax of x [rows, n]; backward dx = y ∘ (g − rowsum(y ∘ g)) from y = out [rows, n].
template <typename T>
void softmax_forward(T* out, const T* inp, int rows, int n, cudaStream_t stream,
                     int block_size = 256);
template <typename T>
void softmax_backward(T* dinp, const T* dout, const T* out, int rows, int n, cudaStream_t stream,
                      int block_size = 256);
)
// clang-format on
