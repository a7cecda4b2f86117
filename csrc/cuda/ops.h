// The CUDA back-end's host launchers: the op front-ends (ops/) route tensors on `cuda` and
// `cuda-emu` here. Each checks devices and storage types, launches kernels through the runtime of
// the tensors' device and records the same autograd node as the CPU path (same op name, inputs
// and gradients). Storage is f32 or bf16 with fp32 arithmetic.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace minivlm::cuda {

// layout and element-wise (a, b already broadcast to one shape by the caller or broadcastable)
Tensor strided_copy(const Tensor& src);  // a contiguous copy of any view, no autograd
// dst ← src on one device, any strides, f32 ↔ bf16 converted (core's DeviceCopyFn; false for
// other dtype pairs).
bool device_copy(const Tensor& dst, const Tensor& src);
// Row gather / scatter of 2-D tensors at `rows` (checked by the front-end; scatter's distinct);
// idx is the front-end's index tensor, recorded as the node's input.
Tensor gather_rows(const Tensor& x, const Tensor& idx, const std::vector<int64_t>& rows);
Tensor scatter_rows(const Tensor& base, const Tensor& idx, const Tensor& src,
                    const std::vector<int64_t>& rows);
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, double s);
Tensor sum(const Tensor& a, int64_t dim, bool keepdim);

Tensor matmul(const Tensor& a, const Tensor& b);

Tensor silu(const Tensor& x);
Tensor gelu(const Tensor& x);
Tensor quick_gelu(const Tensor& x);
Tensor swiglu(const Tensor& gate, const Tensor& up);
Tensor softmax(const Tensor& x);

Tensor rmsnorm(const Tensor& x, const Tensor& weight, double eps);
Tensor layernorm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps);

Tensor rope(const Tensor& x, double theta, int64_t start_pos);
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal);
// x [..., G², D] → [..., (G/r)², D·r²] (SPEC §1.4); G % r == 0 checked by the front-end.
Tensor pixel_shuffle(const Tensor& x, int64_t G, int64_t r);
Tensor embedding(const Tensor& weight, const Tensor& ids);
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                     double denominator);

// optimizer
// The global L2 norm of `grads` (one device), from fp32 partial sums added in a fixed order.
double grad_norm(const std::vector<Tensor>& grads);
// One AdamW update of `param` in place (kernels/adamw.cuh): m, v fp32 like param; master fp32
// weights or undefined (param is its own master); grad_scale: one f32 device value multiplying
// the gradient (clipping) or undefined.
struct AdamWStep {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  long step = 1;
};
void adamw_update(const Tensor& param, const Tensor& master, const Tensor& grad, const Tensor& m,
                  const Tensor& v, const AdamWStep& s, const Tensor& grad_scale);

}  // namespace minivlm::cuda
