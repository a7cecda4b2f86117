// Launchers of kernels/swiglu.cuh: out = silu(gate) · up, element-wise over n, and its backward.
#pragma once

#include "kernels/launchers.h"

// clang-format off
MINIVLM_KERNEL_LAUNCHERS(
template <typename T>
void swiglu_forward(T* out, const T* gate, const T* up, std::size_t n, cudaStream_t stream,
                    int block_size = 256);
template <typename T>
void swiglu_backward(T* dgate, T* dup, const T* dout, const T* gate, const T* up, std::size_t n,
                     cudaStream_t stream, int block_size = 256);
)
// clang-format on
