// The CUDA back-end's host launchers: the op front-ends (ops/) route tensors on `cuda` and
// `cuda-emu` here. Each checks devices and storage types, launches kernels through the runtime of
// the tensors' device and records the same autograd node as the CPU path (same op name, inputs
// and gradients). Storage is f32 or bf16 with fp32 arithmetic.
#pragma once
#include "core/tensor.h"

namespace minivlm::cuda {

// layout and element-wise (a, b already broadcast to one shape by the caller or broadcastable)
Tensor strided_copy(const Tensor& src);  // a contiguous copy of any view, no autograd
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, double s);
Tensor sum(const Tensor& a, int64_t dim, bool keepdim);

Tensor matmul(const Tensor& a, const Tensor& b);

Tensor gelu(const Tensor& x);
Tensor quick_gelu(const Tensor& x);
Tensor swiglu(const Tensor& gate, const Tensor& up);
Tensor softmax(const Tensor& x);

Tensor rmsnorm(const Tensor& x, const Tensor& weight, double eps);
Tensor layernorm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps);

Tensor rope(const Tensor& x, double theta, int64_t start_pos);
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal);
Tensor embedding(const Tensor& weight, const Tensor& ids);
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                     double denominator);

}  // namespace minivlm::cuda
