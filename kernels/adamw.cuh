// One AdamW step (decoupled weight decay, PyTorch semantics, the update of the CPU optimizer):
//   g = grad · grad_scale;  p ← p·(1 − lr·wd);  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²;
//   p ← p − (lr / (1 − β1ᵗ)) · m / (sqrt(v) / sqrt(1 − β2ᵗ) + eps)
// The bias corrections are computed once on the host in double. Master weights, m and v are
// fp32; with a master copy the bf16 parameters are its round-to-nearest image. grad_scale is a
// device scalar so that the clipping factor from global_norm_finish is applied here without a
// round trip to the host or an extra pass over the gradients.
//
// Gradients are stored as G: the parameters' own type, or float for bf16 parameters (training
// accumulates their gradients in f32, autograd/node.h grad_dtype).
//
// Launch: a grid-stride loop, one parameter per thread per step. Bytes per parameter (bf16
// params, fp32 grads and master): read 4 + 4 + 4 + 4, write 2 + 4 + 4 + 4 = 30 B; ~15 FLOPs and
// one sqrtf: memory-bound, ~9 ns per 1K parameters at H100 bandwidth (~3.35 TB/s).
//
// Launch: grid-stride, grid ⌈n / 256⌉ (capped at 65535), block 256, no shared memory. Worked
// example (H100 roofline: 3.35 TB/s HBM, 67 TFLOP/s fp32 non-tensor), minimind2-small: n ≈ 25.8 M
// parameters (tied 6400×512 embedding, 8 layers of attention 0.66 M and MLP 2.16 M), bf16 with fp32
// master and fp32 gradients: 30 B·n = 774 MB → 231 µs; 15·n = 0.4 GFLOP (6 µs).
#pragma once

#include <cmath>

#include "kernels/adamw.h"
#include "kernels/common.cuh"

namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND {

// master [n] or null, params [n], grads [n], m [n], v [n]; grad_scale: a device scalar or null
template <typename T, typename G>
__global__ void adamw_kernel(float* master, T* params, const G* grads, float* m, float* v,
                             std::size_t n, float beta1, float beta2, float decay, float step_size,
                             float inv_sqrt_bc2, float eps, const float* grad_scale) {
  const float scale = grad_scale != nullptr ? *grad_scale : 1.0f;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float g = to_float(grads[i]) * scale;
    float p = master != nullptr ? master[i] : to_float(params[i]);
    p *= decay;
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    p -= step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    if (master != nullptr) master[i] = p;
    params[i] = from_float<T>(p);
  }
}

template <typename T, typename G>
void adamw_update(float* master, T* params, const G* grads, float* m, float* v, std::size_t n,
                  double lr, double beta1, double beta2, double eps, double weight_decay, long step,
                  const float* grad_scale, cudaStream_t stream, int block_size) {
  require(step >= 1, "adamw_update", "needs step >= 1, got " + std::to_string(step));
  require_block_size("adamw_update", block_size);
  if (n == 0) return;
  const double t = static_cast<double>(step);
  const double bc1 = 1.0 - std::pow(beta1, t), bc2 = 1.0 - std::pow(beta2, t);
  simt::launch(adamw_kernel<T, G>, grid_stride_blocks(n, block_size), block_size, 0, stream, master,
               params, grads, m, v, n, static_cast<float>(beta1), static_cast<float>(beta2),
               static_cast<float>(1.0 - lr * weight_decay), static_cast<float>(lr / bc1),
               static_cast<float>(1.0 / std::sqrt(bc2)), static_cast<float>(eps), grad_scale);
}

template decltype(adamw_update<float, float>) adamw_update<float, float>;
template decltype(adamw_update<bf16, bf16>) adamw_update<bf16, bf16>;
template decltype(adamw_update<bf16, float>) adamw_update<bf16, float>;

}  // namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND
