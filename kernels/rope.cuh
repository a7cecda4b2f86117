// Rotary position embedding, half-split (NeoX / HF-LLaMA "rotate_half", SPEC §1.2): for each head
// of x [B, T, heads, hd] at position p = start_pos + t (or positions[b·T + t]) and each i < hd/2,
//   angle = p · theta^(−2i/hd)
//   y[i] = x[i]·cos − x[i + hd/2]·sin,  y[i + hd/2] = x[i + hd/2]·cos + x[i]·sin.
// The backward is the transposed rotation, i.e. the same kernel with −sin.
//
// Launch: a grid-stride loop with one thread per (token, i): it computes cos and sin once and
// rotates that pair in every head, so the trigonometry is amortised over the heads. The angle is
// computed in double: positions reach 32K, where an fp32 angle would be off by up to ~2e-3 rad;
// cos and sin are then rounded to fp32 for the rotation. Bytes per element: read and write
// sizeof(T) each; 3 FLOPs per element plus one double exp, cos and sin per 2·heads elements
// (~100 DP instructions, below the memory time on H100 and A100 for heads ≥ 2): memory-bound,
// in bf16 ~1.2 ns per 1K elements at H100 bandwidth.
//
// Launch: grid-stride, grid ⌈B·T·hd/2 / 256⌉ (capped at 65535), block 256, no shared memory. Worked
// example (H100 roofline: 3.35 TB/s HBM, 67 TFLOP/s fp32 non-tensor), minimind2-small: q [4, 512,
// 8, 64] in bf16 is 1.05 M elements, 4 B each → 4.2 MB → 1.25 µs; k [4, 512, 2, 64] → 1.05 MB →
// 0.31 µs. 65 K (token, i) threads compute the trigonometry once each.
#pragma once

#include <cmath>

#include "kernels/common.cuh"
#include "kernels/rope.h"

namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND {

// out, inp [tokens, heads, head_dim]; tokens = B · seq_len; sign = 1 (forward) or −1 (backward)
template <typename T>
__global__ void rope_kernel(T* out, const T* inp, std::size_t pairs, int seq_len, int heads,
                            int head_dim, double log_theta, int start_pos, const int* positions,
                            float sign) {
  const int half = head_dim / 2;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t e = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < pairs;
       e += stride) {
    const std::size_t token = e / static_cast<std::size_t>(half);
    const int i = static_cast<int>(e % static_cast<std::size_t>(half));
    const double pos = positions != nullptr
                           ? static_cast<double>(positions[token])
                           : static_cast<double>(start_pos) +
                                 static_cast<double>(token % static_cast<std::size_t>(seq_len));
    const double angle = pos * exp(-2.0 * i / head_dim * log_theta);
    const float c = static_cast<float>(cos(angle));
    const float s = sign * static_cast<float>(sin(angle));
    const std::size_t base = token * static_cast<std::size_t>(heads) * head_dim + i;
    for (int h = 0; h < heads; ++h) {
      const std::size_t lo = base + static_cast<std::size_t>(h) * head_dim, hi = lo + half;
      const float a = to_float(inp[lo]), b = to_float(inp[hi]);
      out[lo] = from_float<T>(a * c - b * s);
      out[hi] = from_float<T>(b * c + a * s);
    }
  }
}

template <typename T>
void rope_launch(const char* name, T* out, const T* inp, int B, int seq_len, int heads,
                 int head_dim, double theta, int start_pos, const int* positions, float sign,
                 cudaStream_t stream, int block_size) {
  require(B >= 0 && seq_len >= 0 && heads >= 1 && head_dim >= 2 && head_dim % 2 == 0, name,
          "needs B, seq_len >= 0, heads >= 1 and an even head_dim, got B = " + std::to_string(B) +
              ", seq_len = " + std::to_string(seq_len) + ", heads = " + std::to_string(heads) +
              ", head_dim = " + std::to_string(head_dim));
  require(theta > 0 && start_pos >= 0, name,
          "needs theta > 0 and start_pos >= 0, got theta = " + std::to_string(theta) +
              ", start_pos = " + std::to_string(start_pos));
  require_block_size(name, block_size);
  const std::size_t pairs = static_cast<std::size_t>(B) * seq_len * (head_dim / 2);
  if (pairs == 0) return;
  simt::launch(rope_kernel<T>, grid_stride_blocks(pairs, block_size), block_size, 0, stream, out,
               inp, pairs, seq_len, heads, head_dim, std::log(theta), start_pos, positions, sign);
}

template <typename T>
void rope_forward(T* out, const T* inp, int B, int seq_len, int heads, int head_dim, double theta,
                  int start_pos, cudaStream_t stream, int block_size) {
  rope_launch("rope_forward", out, inp, B, seq_len, heads, head_dim, theta, start_pos, nullptr,
              1.0f, stream, block_size);
}

template <typename T>
void rope_backward(T* dinp, const T* dout, int B, int seq_len, int heads, int head_dim,
                   double theta, int start_pos, cudaStream_t stream, int block_size) {
  rope_launch("rope_backward", dinp, dout, B, seq_len, heads, head_dim, theta, start_pos, nullptr,
              -1.0f, stream, block_size);
}

template <typename T>
void rope_forward_at(T* out, const T* inp, const int* positions, int B, int seq_len, int heads,
                     int head_dim, double theta, cudaStream_t stream, int block_size) {
  rope_launch("rope_forward_at", out, inp, B, seq_len, heads, head_dim, theta, 0, positions, 1.0f,
              stream, block_size);
}

template <typename T>
void rope_backward_at(T* dinp, const T* dout, const int* positions, int B, int seq_len, int heads,
                      int head_dim, double theta, cudaStream_t stream, int block_size) {
  rope_launch("rope_backward_at", dinp, dout, B, seq_len, heads, head_dim, theta, 0, positions,
              -1.0f, stream, block_size);
}

MINIVLM_INSTANTIATE_STORAGE_TYPES(rope_forward)
MINIVLM_INSTANTIATE_STORAGE_TYPES(rope_backward)
MINIVLM_INSTANTIATE_STORAGE_TYPES(rope_forward_at)
MINIVLM_INSTANTIATE_STORAGE_TYPES(rope_backward_at)

}  // namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND
