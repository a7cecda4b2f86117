// The cost of each launcher of kernels/, from its launch arguments alone: the bytes it moves to and
// from global memory, the arithmetic it does and whether that arithmetic is tensor-core (GEMM-like)
// or SIMT. minivlm::kernels::cost::<launcher> takes exactly the arguments of
// kernels::gpu::<launcher> (pointers are never read), so cuda/backend.h's MV_KERNEL can price any
// launch it makes; the GPU cost model (cuda/cost_model.h) sums and times them.
//
// Counting rules (docs/performance.md, "The GPU cost model"):
//   bytes   compulsory traffic: each operand read once and each output written once at its storage
//           size (fp32 statistics, scratch and optimizer state at 4 bytes, indices at 4); scratch
//           is written and read back once. Re-reads a kernel makes from L2 are not counted.
//   flops   tensor-core work: 2 per multiply-add of the attention matmuls (4·d per visible
//           query/key pair forward; 10·d backward: QKᵀ recomputed, then dV, dP, dQ, dK);
//           SIMT work: a per-element operation count (kSimt* below), rough, as these kernels are
//           bound by their bytes by two orders of magnitude.
//   model_flops  the matmul FLOPs of the model (forward 4·d, backward 8·d per pair: no
//           recomputation), which the step's MFU counts; 0 for SIMT kernels.
// Attention with seq_start (packed rows) is priced as plain causal attention: the sample
// boundaries live in device memory, so the count is an upper bound there.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"
#include "kernels/reduce.h"

namespace minivlm::kernels {

struct KernelCost {
  double bytes = 0;        // global-memory traffic
  double flops = 0;        // arithmetic executed
  double model_flops = 0;  // the model's matmul FLOPs (MFU); 0 for SIMT work
  bool tensor_core = false;
  // The launcher's return value for launchers that return one (global_norm_partials), so a run that
  // records without launching (cuda/cost_model.h, shape-only) can hand it back.
  int64_t result = 0;
};

// Query/key pairs attention evaluates: B·Hq·Σ over queries of the keys each sees.
inline double attention_pairs(const AttentionShape& s) {
  double per_head = 0;
  if (!s.causal || s.Tq == 1) {
    per_head = static_cast<double>(s.Tq) * s.Tk;
  } else {
    for (int64_t i = 0; i < s.Tq; ++i)
      per_head += static_cast<double>(std::clamp<int64_t>(i + s.Tk - s.Tq + 1, 0, s.Tk));
  }
  return per_head * s.B * s.Hq;
}

}  // namespace minivlm::kernels

namespace minivlm::kernels::cost {

// SIMT operations per element (rough; see above).
inline constexpr double kSimtActivationForward = 8, kSimtActivationBackward = 12;
inline constexpr double kSimtNorm = 5, kSimtSoftmax = 5, kSimtCrossEntropy = 6, kSimtRope = 6;
inline constexpr double kSimtAdamW = 16;

template <typename T>
constexpr double sz() {
  return static_cast<double>(sizeof(T));
}
inline KernelCost simt(double bytes, double flops) { return {bytes, flops, 0, false, 0}; }
inline double d(std::size_t n) { return static_cast<double>(n); }
inline double d(int64_t n) { return static_cast<double>(n); }
inline double d(int n) { return static_cast<double>(n); }

// ---- activations.h: read inp (and dout), write out
#define MINIVLM_ACTIVATION_COST(name)                                                          \
  template <typename T>                                                                        \
  KernelCost name##_forward(T*, const T*, std::size_t n, cudaStream_t, int = 256) {            \
    return simt(2 * d(n) * sz<T>(), kSimtActivationForward * d(n));                            \
  }                                                                                            \
  template <typename T>                                                                        \
  KernelCost name##_backward(T*, const T*, const T*, std::size_t n, cudaStream_t, int = 256) { \
    return simt(3 * d(n) * sz<T>(), kSimtActivationBackward * d(n));                           \
  }
MINIVLM_ACTIVATION_COST(gelu)
MINIVLM_ACTIVATION_COST(gelu_tanh)
MINIVLM_ACTIVATION_COST(quick_gelu)
MINIVLM_ACTIVATION_COST(silu)
#undef MINIVLM_ACTIVATION_COST

// ---- adamw.h: master (read, write), params (write; read too without master), grads (read),
// m, v (read, write); the gradients in the parameters' dtype or f32 (a bf16 parameter's)
template <typename T, typename G>
KernelCost adamw_update(float* master, T*, const G*, float*, float*, std::size_t n, double, double,
                        double, double, double, long, const float*, cudaStream_t, int = 256) {
  const double per = (master ? 8 + sz<T>() : 2 * sz<T>()) + sz<G>() + 16;
  return simt(per * d(n), kSimtAdamW * d(n));
}

// ---- bias.h
template <typename T>
KernelCost bias_add_forward(T*, const T*, const T*, int N, int C, cudaStream_t, int = 256) {
  return simt((2 * d(N) * C + C) * sz<T>(), d(N) * C);
}
template <typename T>
KernelCost bias_add_backward(T*, float*, const T*, int N, int C, cudaStream_t) {
  return simt((d(N) * C + C) * sz<T>() + 8 * d(column_sum_scratch_floats(N, C)), d(N) * C);
}

// ---- cross_entropy.h: logits read and overwritten with their gradient, targets, losses
template <typename T>
KernelCost cross_entropy_forward_backward(float*, T*, const int*, int N, int V, float, cudaStream_t,
                                          int = 512) {
  return simt(2 * d(N) * V * sz<T>() + 8 * d(N), kSimtCrossEntropy * d(N) * V);
}

// ---- elementwise.h
template <typename T>
KernelCost binary(T*, const T*, const T*, std::size_t n, BinaryOp, cudaStream_t, int = 256) {
  return simt(3 * d(n) * sz<T>(), d(n));
}
template <typename T>
KernelCost scale(T*, const T*, float, std::size_t n, cudaStream_t, int = 256) {
  return simt(2 * d(n) * sz<T>(), d(n));
}
template <typename T>
KernelCost sum_dim(T*, const T*, int64_t outer, int64_t n, int64_t inner, cudaStream_t, int = 256) {
  return simt((d(outer) * d(n) * d(inner) + d(outer) * d(inner)) * sz<T>(),
              d(outer) * d(n) * d(inner));
}

// ---- embedding.h
template <typename T>
KernelCost embedding_forward(T*, const int*, const T*, int N, int, int C, cudaStream_t, int = 256) {
  return simt(2 * d(N) * C * sz<T>() + 4 * d(N), 0);
}
template <typename T>
KernelCost embedding_backward(T*, const T*, const int*, int N, int V, int C, cudaStream_t,
                              int = 256) {
  return simt((d(V) * C + d(N) * C) * sz<T>() + 4 * d(N), d(N) * C);
}

// ---- flash_attention.h: tensor-core work in bf16 (the mma kernels), SIMT in fp32
template <typename T>
double attention_io(const AttentionShape& s) {
  const double q = d(s.B) * s.Tq * s.Hq * s.d, kv = d(s.B) * s.Tk * s.Hkv * s.d;
  return q * sz<T>() + 2 * kv * sz<T>() + q * sz<T>() + 4 * d(s.B) * s.Hq * s.Tq;  // q,k,v,out,lse
}
template <typename T>
KernelCost flash_attention_forward(T*, float*, const T*, const T*, const T*,
                                   const AttentionShape& s, cudaStream_t) {
  const double pairs = attention_pairs(s);
  return {attention_io<T>(s), 4 * s.d * pairs, 4 * s.d * pairs, sizeof(T) == 2, 0};
}
template <typename T>
KernelCost flash_attention_backward(T*, T*, T*, float*, const T*, const T*, const T*, const T*,
                                    const T*, const float*, const AttentionShape& s, cudaStream_t) {
  const double pairs = attention_pairs(s);
  const double q = d(s.B) * s.Tq * s.Hq * s.d, kv = d(s.B) * s.Tk * s.Hkv * s.d;
  // inputs q, k, v, out, lse, dout; outputs dq, dk, dv; scratch rowsum written and read
  const double bytes =
      attention_io<T>(s) + (q + q + 2 * kv) * sz<T>() + 8 * d(flash_backward_scratch_floats(s));
  return {bytes, 10 * s.d * pairs, 8 * s.d * pairs, sizeof(T) == 2, 0};
}
template <typename T>
KernelCost flash_attention_decode(T*, float*, float*, const T*, const T*, const T*,
                                  const AttentionShape& s, cudaStream_t) {
  const double pairs = attention_pairs(s);
  return {attention_io<T>(s) + 8 * d(flash_decode_scratch_floats(s)), 4 * s.d * pairs,
          4 * s.d * pairs, sizeof(T) == 2, 0};
}

// ---- global_norm.h
template <typename T>
KernelCost global_norm_partials(float*, const T*, std::size_t n, cudaStream_t,
                                int block_size = kGlobalNormBlockSize) {
  const int count = global_norm_partial_count(n, block_size);
  KernelCost c = simt(d(n) * sz<T>() + 4 * d(count), 2 * d(n));
  c.result = count;
  return c;
}
inline KernelCost global_norm_finish(float*, const float*, int count, float, cudaStream_t,
                                     int = 1024) {
  return simt(4 * d(count) + 8, d(count));
}
template <typename T>
KernelCost scale_inplace(T*, std::size_t n, const float*, cudaStream_t, int = 256) {
  return simt(2 * d(n) * sz<T>() + 4, d(n));
}
inline KernelCost reduce_sum(float*, const float*, int n, cudaStream_t, int = 1024) {
  return simt(4 * d(n) + 4, d(n));
}

// ---- rmsnorm.h / layernorm.h: the weight-gradient scratch rows are written and read back
template <typename T>
KernelCost rmsnorm_forward(T*, float*, const T*, const T*, int N, int C, float, cudaStream_t,
                           int = 256) {
  return simt((2 * d(N) * C + C) * sz<T>() + 4 * d(N), kSimtNorm * d(N) * C);
}
template <typename T>
KernelCost fused_residual_rmsnorm_forward(T*, T*, float*, const T*, const T*, const T*, int N,
                                          int C, float, cudaStream_t, int = 256) {
  return simt((4 * d(N) * C + C) * sz<T>() + 4 * d(N), (kSimtNorm + 1) * d(N) * C);
}
template <typename T>
KernelCost rmsnorm_backward(T*, T*, float*, const T*, const T*, const T*, const float*, int N,
                            int C, cudaStream_t, int = 256) {
  return simt(
      (3 * d(N) * C + 2 * d(C)) * sz<T>() + 4 * d(N) + 8 * d(rmsnorm_backward_scratch_floats(N, C)),
      2 * kSimtNorm * d(N) * C);
}
template <typename T>
KernelCost fused_residual_rmsnorm_backward(T*, T*, float*, const T*, const T*, const T*, const T*,
                                           const float*, int N, int C, cudaStream_t, int = 256) {
  return simt(
      (4 * d(N) * C + 2 * d(C)) * sz<T>() + 4 * d(N) + 8 * d(rmsnorm_backward_scratch_floats(N, C)),
      (2 * kSimtNorm + 1) * d(N) * C);
}
template <typename T>
KernelCost layernorm_forward(T*, float*, float*, const T*, const T*, const T*, int N, int C, float,
                             cudaStream_t, int = 256) {
  return simt((2 * d(N) * C + 2 * d(C)) * sz<T>() + 8 * d(N), kSimtNorm * d(N) * C);
}
template <typename T>
KernelCost layernorm_backward(T*, T*, T*, float*, const T*, const T*, const T*, const float*,
                              const float*, int N, int C, cudaStream_t, int = 256) {
  return simt((3 * d(N) * C + 3 * d(C)) * sz<T>() + 8 * d(N) +
                  8 * d(layernorm_backward_scratch_floats(N, C)),
              2 * kSimtNorm * d(N) * C);
}

// ---- layout.h
inline double distinct_elements(const StridedView& v) {  // stride-0 dimensions read one element
  double n = 1;
  for (int i = 0; i < v.ndim; ++i)
    if (v.stride[i] != 0) n *= d(v.shape[i]);
  return v.ndim == 0 ? 1 : n;
}
template <typename To, typename From>
KernelCost strided_convert(To*, const StridedView& out_view, const From*,
                           const StridedView& in_view, cudaStream_t, int = 256) {
  return simt(d(out_view.numel()) * sz<To>() + distinct_elements(in_view) * sz<From>(), 0);
}
template <typename T>
KernelCost copy_rows(T*, const int* out_rows, const T* in, const int* in_rows, int M, int64_t H,
                     cudaStream_t, int = 256) {
  return simt(
      (in ? 2 : 1) * d(M) * d(H) * sz<T>() + (out_rows ? 4 * d(M) : 0) + (in_rows ? 4 * d(M) : 0),
      0);
}
template <typename T>
KernelCost add_rows(T*, const int*, const T*, int M, int64_t H, cudaStream_t, int = 256) {
  return simt(3 * d(M) * d(H) * sz<T>() + 4 * d(M), d(M) * d(H));
}

// ---- pixel_shuffle.h: a permutation
template <typename T>
KernelCost pixel_shuffle_forward(T*, const T*, int B, int G, int D, int, cudaStream_t, int = 256) {
  return simt(2 * d(B) * G * G * D * sz<T>(), 0);
}
template <typename T>
KernelCost pixel_shuffle_backward(T*, const T*, int B, int G, int D, int, cudaStream_t, int = 256) {
  return simt(2 * d(B) * G * G * D * sz<T>(), 0);
}

// ---- rope.h
#define MINIVLM_ROPE_COST(name)                                                               \
  template <typename T>                                                                       \
  KernelCost name(T*, const T*, int B, int seq_len, int heads, int head_dim, double, int,     \
                  cudaStream_t, int = 256) {                                                  \
    const double n = d(B) * seq_len * heads * head_dim;                                       \
    return simt(2 * n * sz<T>(), kSimtRope * n);                                              \
  }                                                                                           \
  template <typename T>                                                                       \
  KernelCost name##_at(T*, const T*, const int*, int B, int seq_len, int heads, int head_dim, \
                       double, cudaStream_t, int = 256) {                                     \
    const double n = d(B) * seq_len * heads * head_dim;                                       \
    return simt(2 * n * sz<T>() + 4 * d(B) * seq_len, kSimtRope * n);                         \
  }
MINIVLM_ROPE_COST(rope_forward)
MINIVLM_ROPE_COST(rope_backward)
#undef MINIVLM_ROPE_COST

// ---- softmax.h
template <typename T>
KernelCost softmax_forward(T*, const T*, int rows, int n, cudaStream_t, int = 256) {
  return simt(2 * d(rows) * n * sz<T>(), kSimtSoftmax * d(rows) * n);
}
template <typename T>
KernelCost softmax_backward(T*, const T*, const T*, int rows, int n, cudaStream_t, int = 256) {
  return simt(3 * d(rows) * n * sz<T>(), 3 * d(rows) * n);
}

// ---- swiglu.h: out = silu(gate)·up
template <typename T>
KernelCost swiglu_forward(T*, const T*, const T*, std::size_t n, cudaStream_t, int = 256) {
  return simt(3 * d(n) * sz<T>(), (kSimtActivationForward + 1) * d(n));
}
template <typename T>
KernelCost swiglu_backward(T*, T*, const T*, const T*, const T*, std::size_t n, cudaStream_t,
                           int = 256) {
  return simt(5 * d(n) * sz<T>(), (kSimtActivationBackward + 2) * d(n));
}

// ---- the runtime's GEMM (cuda/runtime.h), per matrix: reads A and B, writes C (and reads it when
// beta ≠ 0); 2·m·n·k FLOPs, tensor-core in bf16 (fp32 GEMMs stay fp32: no TF32).
inline KernelCost gemm(int64_t m, int64_t n, int64_t k, std::size_t esize, bool reads_c) {
  const double e = static_cast<double>(esize);
  const double flops = 2 * d(m) * d(n) * d(k);
  return {(d(m) * d(k) + d(k) * d(n) + (reads_c ? 2 : 1) * d(m) * d(n)) * e, flops, flops,
          esize == 2, 0};
}

}  // namespace minivlm::kernels::cost
