// Launcher of kernels/adamw.cuh: one AdamW step, PyTorch semantics.
#pragma once

#include "kernels/launchers.h"

// clang-format off
MINIVLM_KERNEL_LAUNCHERS(
//   g = grad · grad_scale;  p ← p − lr·wd·p;  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;
//   p ← p − lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + eps)
// master [n] fp32 master weights (null: params are their own master), params [n] (written from
// the master), grads [n], m, v [n] fp32; step t ≥ 1; grad_scale: a device scalar (null: 1), e.g.
// the clipping factor of global_norm_finish. Instantiated for T = G = float, T = G = bf16, and
// bf16 params with float gradients (G = float: the f32 gradients that bf16 parameters accumulate,
// autograd/node.h grad_dtype).
template <typename T, typename G>
void adamw_update(float* master, T* params, const G* grads, float* m, float* v, std::size_t n,
                  double lr, double beta1, double beta2, double eps, double weight_decay, long step,
                  const float* grad_scale, cudaStream_t stream, int block_size = 256);
)
// clang-format on
