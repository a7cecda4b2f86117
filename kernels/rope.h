// Launchers of kernels/rope.cuh: the half-split rotary embedding (SPEC §1.2), forward and backward.
#pragma once

#include "kernels/launchers.h"

// clang-format off
MINIVLM_KERNEL_LAUNCHERS(
// x [B, seq_len, heads, head_dim] at positions start_pos .. start_pos + seq_len − 1; out may alias
// inp. The backward rotates by the opposite angle.
template <typename T>
void rope_forward(T* out, const T* inp, int B, int seq_len, int heads, int head_dim, double theta,
                  int start_pos, cudaStream_t stream, int block_size = 256);
template <typename T>
void rope_backward(T* dinp, const T* dout, int B, int seq_len, int heads, int head_dim,
                   double theta, int start_pos, cudaStream_t stream, int block_size = 256);
// The same with token (b, t) at positions[b·seq_len + t] (≥ 0) instead of start_pos + t: packed
// rows, whose positions restart at 0 for each sample.
template <typename T>
void rope_forward_at(T* out, const T* inp, const int* positions, int B, int seq_len, int heads,
                     int head_dim, double theta, cudaStream_t stream, int block_size = 256);
template <typename T>
void rope_backward_at(T* dinp, const T* dout, const int* positions, int B, int seq_len, int heads,
                      int head_dim, double theta, cudaStream_t stream, int block_size = 256);
)
// clang-format on
