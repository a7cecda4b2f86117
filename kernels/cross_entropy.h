// Launcher of kernels/cross_entropy.cuh: masked softmax cross-entropy fused with its gradient.
#pragma once

#include "kernels/launchers.h"

namespace minivlm::kernels {

inline constexpr int kIgnoreIndex = -100;

}  // namespace minivlm::kernels

// clang-format off
MINIVLM_KERNEL_LAUNCHERS(
// logits [N, V] are overwritten by dlogits = (softmax − onehot(target)) · dlogits_scale;
// losses [N] (fp32) get lse − logit[target]. Rows whose target is kIgnoreIndex get loss 0 and a
// zero gradient. For the mean of SPEC §4.2: dlogits_scale = dloss / denominator and
// loss = Σ losses / denominator (reduce_sum, global_norm.h).
template <typename T>
void cross_entropy_forward_backward(float* losses, T* logits, const int* targets, int N, int V,
                                    float dlogits_scale, cudaStream_t stream, int block_size = 512);
)
// clang-format on
