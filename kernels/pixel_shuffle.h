// Launchers of kernels/pixel_shuffle.cuh: the SmolVLM / Idefics3 pixel shuffle (SPEC §1.4).
#pragma once

#include "kernels/launchers.h"

// clang-format off
MINIVLM_KERNEL_LAUNCHERS(
// inp [B, G·G, D] → out [B, (G/r)², D·r²]; the backward is the inverse permutation.
template <typename T>
void pixel_shuffle_forward(T* out, const T* inp, int B, int G, int D, int r, cudaStream_t stream,
                           int block_size = 256);
template <typename T>
void pixel_shuffle_backward(T* dinp, const T* dout, int B, int G, int D, int r, cudaStream_t stream,
                            int block_size = 256);
)
// clang-format on
