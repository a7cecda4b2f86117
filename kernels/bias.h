// Launchers of kernels/bias.cuh: the bias add over rows and its backward, a column sum.
#pragma once

#include "kernels/launchers.h"
#include "kernels/reduce.h"

// clang-format off
MINIVLM_KERNEL_LAUNCHERS(
// out [N, C] = inp [N, C] + bias [C] (out may alias inp)
template <typename T>
void bias_add_forward(T* out, const T* inp, const T* bias, int N, int C, cudaStream_t stream,
                      int block_size = 256);
// dbias [C] = Σ over rows of dout [N, C]; scratch [column_sum_scratch_floats(N, C)]
template <typename T>
void bias_add_backward(T* dbias, float* scratch, const T* dout, int N, int C, cudaStream_t stream);
)
// clang-format on
