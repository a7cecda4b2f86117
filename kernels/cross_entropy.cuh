// Masked softmax cross-entropy fused with its gradient. For each row of logits [N, V] with a
// target t (kIgnoreIndex: the row is not supervised),
//   lse = log Σ_j exp(x_j),  loss = lse − x_t,  dlogits_j = (exp(x_j − lse) − [j = t]) · scale,
// and dlogits overwrites the logits in place. The probabilities exist once, as they are written
// into the gradient; nothing of size [N, V] is stored besides the logits buffer itself, and the
// backward of the loss costs no extra pass. Ignored rows get loss 0 and a zero gradient.
//
// Launch: one block per row. Pass 1 reads the row once with an online softmax (each thread keeps
// a running max and a sum of exp(x − max), rescaled when the max grows), then a block reduction
// combines the (max, sum) pairs; pass 2 re-reads the row and writes the gradient over it. The
// logit of the target is read by every thread before the reduction's barriers, so before any
// thread overwrites it. Bytes per element: read 2·sizeof(T), write sizeof(T), the second read
// mostly from L2 (a row is V·sizeof(T), 12.8 KB for V = 6400 in bf16), so ~4 B of DRAM traffic per
// element in bf16: ~7.6 ns per row of 6400 at H100 bandwidth (~3.35 TB/s). ~2 expf and ~8 other
// FLOPs per element: memory-bound.
//
// Launch: grid N, block 512, no dynamic shared memory (block reductions: static). Worked example
// (H100 roofline: 3.35 TB/s HBM, 67 TFLOP/s fp32 non-tensor), minimind2-small (V = 6400), B = 4, T
// = 512 → N = 2048 rows, bf16: ~4 B·N·V = 52 MB of DRAM traffic → 15.6 µs; ~10·N·V = 131 MFLOP (2
// µs).
#pragma once

#include <cmath>

#include "kernels/common.cuh"
#include "kernels/cross_entropy.h"

namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND {

// (m, s) ⊕ (m2, s2) for s = Σ exp(x − m); a pair with m = −inf holds nothing.
__device__ __forceinline__ void combine_max_sum(float& m, float& s, float m2, float s2) {
  if (m2 == -INFINITY) return;
  if (m == -INFINITY) {
    m = m2;
    s = s2;
    return;
  }
  const float mx = fmaxf(m, m2);
  s = s * expf(m - mx) + s2 * expf(m2 - mx);
  m = mx;
}

// Combines every thread's (m, s) over the block and returns the result to every thread.
__device__ inline void block_max_sum(float& m, float& s) {
  __shared__ float warp_max[32], warp_sum[32];
  __shared__ float block_max, block_sum_exp;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int warps = static_cast<int>(blockDim.x) / 32;
  for (int offset = 16; offset > 0; offset /= 2) {
    const float m2 = __shfl_down_sync(kFullMask, m, offset);
    const float s2 = __shfl_down_sync(kFullMask, s, offset);
    combine_max_sum(m, s, m2, s2);
  }
  if (lane == 0) {
    warp_max[warp] = m;
    warp_sum[warp] = s;
  }
  __syncthreads();
  if (warp == 0) {
    m = lane < warps ? warp_max[lane] : -INFINITY;
    s = lane < warps ? warp_sum[lane] : 0.0f;
    for (int offset = 16; offset > 0; offset /= 2) {
      const float m2 = __shfl_down_sync(kFullMask, m, offset);
      const float s2 = __shfl_down_sync(kFullMask, s, offset);
      combine_max_sum(m, s, m2, s2);
    }
    if (lane == 0) {
      block_max = m;
      block_sum_exp = s;
    }
  }
  __syncthreads();
  m = block_max;
  s = block_sum_exp;
}

// losses [N], logits [N, V] (overwritten by dlogits), targets [N]
template <typename T>
__global__ void cross_entropy_kernel(float* losses, T* logits, const int* targets, int V,
                                     float scale) {
  T* x = logits + static_cast<std::size_t>(blockIdx.x) * static_cast<std::size_t>(V);
  const int target = targets[blockIdx.x];
  const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
  // kIgnoreIndex; the op front-end admits no other target outside [0, V), and any such row is
  // treated alike here rather than read outside the row.
  if (target < 0 || target >= V) {
    for (int c = tid; c < V; c += threads) x[c] = from_float<T>(0.0f);
    if (tid == 0) losses[blockIdx.x] = 0.0f;
    return;
  }
  const float x_target = to_float(x[target]);
  float m = -INFINITY, s = 0.0f;
  for (int c = tid; c < V; c += threads) {
    const float v = to_float(x[c]);
    if (v > m) {
      s = s * expf(m - v) + 1.0f;
      m = v;
    } else {
      s += expf(v - m);
    }
  }
  block_max_sum(m, s);
  const float lse = m + logf(s);
  for (int c = tid; c < V; c += threads) {
    const float p = expf(to_float(x[c]) - lse);
    x[c] = from_float<T>((c == target ? p - 1.0f : p) * scale);
  }
  if (tid == 0) losses[blockIdx.x] = lse - x_target;
}

template <typename T>
void cross_entropy_forward_backward(float* losses, T* logits, const int* targets, int N, int V,
                                    float dlogits_scale, cudaStream_t stream, int block_size) {
  require_rows("cross_entropy_forward_backward", N, V);
  require_block_size("cross_entropy_forward_backward", block_size);
  if (N == 0) return;
  simt::launch(cross_entropy_kernel<T>, N, block_size, 0, stream, losses, logits, targets, V,
               dlogits_scale);
}

MINIVLM_INSTANTIATE_STORAGE_TYPES(cross_entropy_forward_backward)

}  // namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND
