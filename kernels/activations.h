// Launchers of kernels/activations.cuh, element-wise over n, forward and backward:
// gelu(x) = x·Φ(x) (erf form), gelu_tanh(x) = its tanh approximation,
// quick_gelu(x) = x·sigmoid(1.702·x), silu(x) = x·sigmoid(x).
#pragma once

#include "kernels/launchers.h"

// clang-format off
MINIVLM_KERNEL_LAUNCHERS(
// out may alias inp; dinp may alias dout.
template <typename T>
void gelu_forward(T* out, const T* inp, std::size_t n, cudaStream_t stream, int block_size = 256);
template <typename T>
void gelu_backward(T* dinp, const T* dout, const T* inp, std::size_t n, cudaStream_t stream,
                   int block_size = 256);
template <typename T>
void gelu_tanh_forward(T* out, const T* inp, std::size_t n, cudaStream_t stream,
                       int block_size = 256);
template <typename T>
void gelu_tanh_backward(T* dinp, const T* dout, const T* inp, std::size_t n, cudaStream_t stream,
                        int block_size = 256);
template <typename T>
void quick_gelu_forward(T* out, const T* inp, std::size_t n, cudaStream_t stream,
                        int block_size = 256);
template <typename T>
void quick_gelu_backward(T* dinp, const T* dout, const T* inp, std::size_t n, cudaStream_t stream,
                         int block_size = 256);
template <typename T>
void silu_forward(T* out, const T* inp, std::size_t n, cudaStream_t stream, int block_size = 256);
template <typename T>
void silu_backward(T* dinp, const T* dout, const T* inp, std::size_t n, cudaStream_t stream,
                   int block_size = 256);
)
// clang-format on
