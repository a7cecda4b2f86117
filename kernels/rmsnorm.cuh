// RMSNorm over the last dimension, y = weight · x · rstd with rstd = 1 / sqrt(mean(x²) + eps), and
// its variant fused with the residual add of a pre-norm decoder: residual = x + r, y =
// rmsnorm(residual), both written in one pass (the residual stream is read once instead of three
// times: once by the add, twice by the norm). Statistics are fp32; rstd is saved for the backward.
//
// Forward: one block per row, threads striding over the C columns; a block sum of x² gives rstd,
// then a second sweep (of the same thread's elements, still in L1) writes y. DRAM bytes per
// element: read sizeof(T), write sizeof(T) (the weight row stays in L2); fused: read 2, write 2
// elements. ~4 FLOPs per element: memory-bound; in bf16 at H100 bandwidth (~3.35 TB/s) ~1.2 ns
// per 1K elements (fused ~2.4 ns).
//
// Backward, with x̂ = x·rstd and g = dout·weight:
//   dx = rstd · (g − x̂ · mean(g·x̂))          (+ dresidual in the fused variant)
//   dweight = Σ_rows dout · x̂
// One block per row as in the forward, but only min(N, kNormBackwardBlocks) blocks, each looping
// over rows blockIdx.x, blockIdx.x + gridDim.x, ...: a block sums dout·x̂ of its rows into shared
// memory, each thread owning its columns (no atomics), then writes that partial row to scratch;
// a column sum adds the partial rows in order (reduce.cuh). DRAM bytes per element: read
// 2·sizeof(T) (dout, x; + dresidual), write sizeof(T); ~10 FLOPs per element: memory-bound, in
// bf16 ~1.8 ns per 1K elements on H100 (fused ~2.4 ns), plus the scratch rows (blocks·C floats).
//
// Launch: forward grid N, block 256, no dynamic shared memory (block_sum: 33 floats static);
// backward grid min(N, 256), block 256, dynamic shared C·4 B. Worked example (H100 roofline: 3.35
// TB/s HBM, 67 TFLOP/s fp32 non-tensor), minimind2-small (C = 512), B = 4, T = 512 → N = 2048 rows,
// bf16: forward 4 B·N·C = 4.2 MB → 1.25 µs (fused 8.4 MB → 2.5 µs); backward 6 B·N·C = 6.3 MB +
// scratch 2·256·512·4 B = 1 MB → 2.2 µs. FLOPs (~4·N·C = 4 MFLOP, ~0.06 µs) never matter.
#pragma once

#include <algorithm>

#include "kernels/reduce.cuh"
#include "kernels/rmsnorm.h"

namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND {

// residual (fused only) [N, C], out [N, C], rstd [N] or null, x [N, C], r [N, C] (fused only)
template <typename T, bool kFused>
__global__ void rmsnorm_forward_kernel(T* residual, T* out, float* rstd, const T* x, const T* r,
                                       const T* weight, int C, float eps) {
  const std::size_t row = static_cast<std::size_t>(blockIdx.x) * static_cast<std::size_t>(C);
  const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
  // The fused variant normalises the residual as stored (rounded to T), so that out equals
  // rmsnorm_forward(residual) and the backward can recompute from the saved residual.
  const T* in = kFused ? residual : x;
  float squares = 0.0f;
  for (int c = tid; c < C; c += threads) {
    float v = to_float(x[row + c]);
    if constexpr (kFused) {
      const T sum = from_float<T>(v + to_float(r[row + c]));
      residual[row + c] = sum;
      v = to_float(sum);
    }
    squares += v * v;
  }
  const float s = rsqrtf(block_sum(squares) / static_cast<float>(C) + eps);
  for (int c = tid; c < C; c += threads) {
    out[row + c] = from_float<T>(to_float(in[row + c]) * s * to_float(weight[c]));
  }
  if (rstd != nullptr && tid == 0) rstd[blockIdx.x] = s;
}

// dinp [N, C], dweight_partials [gridDim.x, C], dresidual [N, C] (fused only)
template <typename T, bool kFused>
__global__ void rmsnorm_backward_kernel(T* dinp, float* dweight_partials, const T* dresidual,
                                        const T* dout, const T* inp, const T* weight,
                                        const float* rstd, int N, int C) {
  float* dweight = dynamic_smem<float>();  // [C] this block's Σ dout·x̂
  const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
  for (int c = tid; c < C; c += threads) dweight[c] = 0.0f;
  for (int n = static_cast<int>(blockIdx.x); n < N; n += static_cast<int>(gridDim.x)) {
    const std::size_t row = static_cast<std::size_t>(n) * static_cast<std::size_t>(C);
    const float s = rstd[n];
    float dot = 0.0f;  // Σ g·x̂
    for (int c = tid; c < C; c += threads) {
      const float d = to_float(dout[row + c]);
      const float xhat = to_float(inp[row + c]) * s;
      dot += d * to_float(weight[c]) * xhat;
      dweight[c] += d * xhat;
    }
    const float mean_dot = block_sum(dot) / static_cast<float>(C);
    for (int c = tid; c < C; c += threads) {
      const float g = to_float(dout[row + c]) * to_float(weight[c]);
      float dx = s * (g - to_float(inp[row + c]) * s * mean_dot);
      if constexpr (kFused) dx += to_float(dresidual[row + c]);
      dinp[row + c] = from_float<T>(dx);
    }
  }
  float* partial = dweight_partials + static_cast<std::size_t>(blockIdx.x) * C;
  for (int c = tid; c < C; c += threads) partial[c] = dweight[c];
}

template <bool kFused, typename T>
void rmsnorm_forward_launch(const char* name, T* residual, T* out, float* rstd, const T* x,
                            const T* r, const T* weight, int N, int C, float eps,
                            cudaStream_t stream, int block_size) {
  require_rows(name, N, C);
  require_block_size(name, block_size);
  if (N == 0) return;
  simt::launch(rmsnorm_forward_kernel<T, kFused>, N, block_size, 0, stream, residual, out, rstd, x,
               r, weight, C, eps);
}

template <bool kFused, typename T>
void rmsnorm_backward_launch(const char* name, T* dinp, T* dweight, float* scratch,
                             const T* dresidual, const T* dout, const T* inp, const T* weight,
                             const float* rstd, int N, int C, cudaStream_t stream, int block_size) {
  require_rows(name, N, C);
  require_block_size(name, block_size);
  const int blocks = std::min(N, kNormBackwardBlocks);
  if (blocks > 0) {
    const std::size_t smem = static_cast<std::size_t>(C) * sizeof(float);
    allow_dynamic_smem(rmsnorm_backward_kernel<T, kFused>, smem);
    simt::launch(rmsnorm_backward_kernel<T, kFused>, blocks, block_size, smem, stream, dinp,
                 scratch, dresidual, dout, inp, weight, rstd, N, C);
  }
  column_sum(dweight, nullptr, static_cast<const float*>(scratch), blocks, C, C, stream);
}

template <typename T>
void rmsnorm_forward(T* out, float* rstd, const T* inp, const T* weight, int N, int C, float eps,
                     cudaStream_t stream, int block_size) {
  rmsnorm_forward_launch<false, T>("rmsnorm_forward", nullptr, out, rstd, inp, nullptr, weight, N,
                                   C, eps, stream, block_size);
}

template <typename T>
void fused_residual_rmsnorm_forward(T* residual, T* out, float* rstd, const T* x, const T* r,
                                    const T* weight, int N, int C, float eps, cudaStream_t stream,
                                    int block_size) {
  rmsnorm_forward_launch<true, T>("fused_residual_rmsnorm_forward", residual, out, rstd, x, r,
                                  weight, N, C, eps, stream, block_size);
}

template <typename T>
void rmsnorm_backward(T* dinp, T* dweight, float* scratch, const T* dout, const T* inp,
                      const T* weight, const float* rstd, int N, int C, cudaStream_t stream,
                      int block_size) {
  rmsnorm_backward_launch<false, T>("rmsnorm_backward", dinp, dweight, scratch, nullptr, dout, inp,
                                    weight, rstd, N, C, stream, block_size);
}

template <typename T>
void fused_residual_rmsnorm_backward(T* dinp, T* dweight, float* scratch, const T* dresidual,
                                     const T* dout, const T* residual, const T* weight,
                                     const float* rstd, int N, int C, cudaStream_t stream,
                                     int block_size) {
  rmsnorm_backward_launch<true, T>("fused_residual_rmsnorm_backward", dinp, dweight, scratch,
                                   dresidual, dout, residual, weight, rstd, N, C, stream,
                                   block_size);
}

MINIVLM_INSTANTIATE_STORAGE_TYPES(rmsnorm_forward)
MINIVLM_INSTANTIATE_STORAGE_TYPES(fused_residual_rmsnorm_forward)
MINIVLM_INSTANTIATE_STORAGE_TYPES(rmsnorm_backward)
MINIVLM_INSTANTIATE_STORAGE_TYPES(fused_residual_rmsnorm_backward)

}  // namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND
