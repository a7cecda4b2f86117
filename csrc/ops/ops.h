// The op set. Each op checks shapes and dtypes, dispatches to a back-end, and records an autograd
// node whose backward is another composition of ops (or a fused backward routine).
//
// Floating ops run in the input dtype on the CPU back-end for f32 and f64 (f64 is the
// gradient-check path); bf16/f16 tensors are converted with to() first. Shapes in comments: B
// batch, T tokens, H hidden, V vocab, nq/nkv heads, hd head dim.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace minivlm::ops {

// ---- element-wise (numpy broadcasting) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, double s);
// Sums `g` over broadcast dimensions so that it has `shape` (the backward of broadcasting).
Tensor reduce_to_shape(const Tensor& g, const Shape& shape);
Tensor expand(const Tensor& a, const Shape& shape);  // a broadcast view

// ---- reductions ----
Tensor sum(const Tensor& a);  // scalar []
Tensor sum(const Tensor& a, int64_t dim, bool keepdim = false);
Tensor mean(const Tensor& a);
Tensor mean(const Tensor& a, int64_t dim, bool keepdim = false);

// ---- linear algebra ----
// a [..., M, K] @ b [..., K, N] (batch dims broadcast; b may be 2-D) → [..., M, N]
Tensor matmul(const Tensor& a, const Tensor& b);
// x [..., K] · weightᵀ (weight [N, K]) + bias [N] → [..., N]
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- activations ----
Tensor silu(const Tensor& x);
Tensor gelu(const Tensor& x);                         // erf form
Tensor gelu_tanh(const Tensor& x);                    // tanh form (PyTorch approximate='tanh')
Tensor quick_gelu(const Tensor& x);                   // x · sigmoid(1.702 x)
Tensor swiglu(const Tensor& gate, const Tensor& up);  // silu(gate) · up
Tensor softmax(const Tensor& x);                      // over the last dimension

// ---- normalization (over the last dimension, statistics in fp32 or better) ----
Tensor rmsnorm(const Tensor& x, const Tensor& weight, double eps);
Tensor layernorm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps);

// ---- transformer pieces ----
// Half-split rotary embedding of x [B, T, nh, hd] at positions start_pos .. start_pos+T-1.
Tensor rope(const Tensor& x, double theta, int64_t start_pos = 0);
// The same at per-token positions: token t of row b at positions[b, t] (positions [B, T], i32 or
// i64 on any device, values in [0, 2³¹)). Packed rows (SPEC §4.2) restart at 0 for each sample.
Tensor rope_at(const Tensor& x, double theta, const Tensor& positions);
// Scaled dot-product attention. q [B, Tq, nq, hd], k/v [B, Tk, nkv, hd], nq % nkv == 0 (GQA).
// causal: query i sees keys j <= i + (Tk - Tq). One fused node; backward recomputes the
// probabilities from the saved log-sum-exp (never stores [Tq, Tk]).
// seq_start (packed rows, SPEC §4.2; needs causal and Tq == Tk): [B, T] i32 or i64 on any device,
// each row non-decreasing with seq_start[b, i] ≤ i, the first token of query i's sample; query i
// then sees only keys seq_start[b, i] ≤ j ≤ i (block-diagonal causal attention). Undefined: one
// sequence per row.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                 const Tensor& seq_start = Tensor());
// Token embedding: weight [V, H], ids (i32/i64) [...] → [..., H]. Backward is a deterministic
// scatter-add.
Tensor embedding(const Tensor& weight, const Tensor& ids);
// Mean cross-entropy over positions whose target != ignore_index. logits [N, V], targets [N].
// The sum is divided by `denominator` when > 0 (a global supervised-token count, SPEC §4.2), else
// by the local count; no supervised token gives 0.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100,
                     double denominator = 0.0);
inline constexpr int64_t kIgnoreIndex = -100;

// ---- vision ----
// Patch embedding: conv2d with stride = kernel = p, no padding. pixels [B, C, H, W],
// weight [D, C, p, p], bias [D] or undefined → [B, (H/p)·(W/p), D], row-major over the grid.
Tensor patch_embed(const Tensor& pixels, const Tensor& weight, const Tensor& bias = Tensor());
// SmolVLM / Idefics3 pixel shuffle (SPEC §1.4): x [..., S, D], S = G² → [..., S/r², D·r²].
Tensor pixel_shuffle(const Tensor& x, int64_t r);

// ---- shape / gather ----
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
// rows of x [N, H] at idx [M] → [M, H]
Tensor gather_rows(const Tensor& x, const Tensor& idx);
// A copy of base [N, H] whose rows idx [M] (distinct) are replaced by src [M, H].
Tensor scatter_rows(const Tensor& base, const Tensor& idx, const Tensor& src);
// A copy of base [N, H] with src [M, H] added to its rows idx [M] (i32/i64 in [0, N); repeated
// rows summed in order of idx). Gradients: base ← dout, src ← rows idx of dout.
Tensor index_add_rows(const Tensor& base, const Tensor& idx, const Tensor& src);
// Element-type conversion, differentiable (the gradient is converted back).
Tensor cast(const Tensor& x, DType dtype);

}  // namespace minivlm::ops
