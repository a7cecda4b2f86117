// Launchers of kernels/flash_attention.cuh: softmax(q kᵀ / sqrt(d)) v, fused (FlashAttention-2),
// forward, backward, and the forward of one decode step split along the keys.
#pragma once

#include "kernels/launchers.h"

namespace minivlm::kernels {

// q [B, Tq, Hq, d], k, v [B, Tk, Hkv, d], Hq % Hkv == 0; causal: query row i sees keys
// j <= i + Tk - Tq. seq_start (packed rows: causal, Tq == Tk; device memory, [B, Tq]) or null:
// row b's query i then sees only keys j ≥ seq_start[b·Tq + i], the first token of its sample;
// each row of it is non-decreasing with seq_start[b·Tq + i] ≤ i (variable-length attention:
// key tiles before a query tile's sample, and query tiles past a key tile's sample, are skipped).
struct AttentionShape {
  int B = 0, Tq = 0, Tk = 0, Hq = 0, Hkv = 0, d = 0;
  bool causal = false;
  const int* seq_start = nullptr;
};
inline constexpr int kFlashMaxHeadDim = 128;
// The decode kernel splits a cache of Tk keys into chunks of kFlashDecodeChunk keys; with more
// than one chunk each (b, h, chunk) leaves (m, l, acc[d]) in scratch for the combine.
inline constexpr int kFlashDecodeChunk = 128;
inline constexpr std::size_t flash_decode_scratch_floats(const AttentionShape& s) {
  const std::size_t chunks = (static_cast<std::size_t>(s.Tk) + kFlashDecodeChunk - 1) /
                             static_cast<std::size_t>(kFlashDecodeChunk);
  return chunks > 1 ? static_cast<std::size_t>(s.B) * static_cast<std::size_t>(s.Hq) * chunks *
                          static_cast<std::size_t>(s.d + 2)
                    : 0;
}
// The backward's rowsum(dO ∘ O), [B, Hq, Tq] fp32.
inline constexpr std::size_t flash_backward_scratch_floats(const AttentionShape& s) {
  return static_cast<std::size_t>(s.B) * static_cast<std::size_t>(s.Hq) *
         static_cast<std::size_t>(s.Tq);
}

}  // namespace minivlm::kernels

// clang-format off
MINIVLM_KERNEL_LAUNCHERS(
// out [B, Tq, Hq, d], lse [B, Hq, Tq] fp32 (log Σ exp of the scaled scores; −inf for a row that
// sees no key, whose output is 0), q [B, Tq, Hq, d], k, v [B, Tk, Hkv, d]; query head h reads kv
// head h / (Hq / Hkv). d: a multiple of 8 in [8, kFlashMaxHeadDim].
template <typename T>
void flash_attention_forward(T* out, float* lse, const T* q, const T* k, const T* v,
                             const AttentionShape& s, cudaStream_t stream);
// dq like q, dk, dv like k, v (each kv head's gradient summed over its query heads in-kernel, no
// atomics); scratch [flash_backward_scratch_floats(s)]; out and lse from the forward.
template <typename T>
void flash_attention_backward(T* dq, T* dk, T* dv, float* scratch, const T* dout, const T* q,
                              const T* k, const T* v, const T* out, const float* lse,
                              const AttentionShape& s, cudaStream_t stream);
// The forward for s.Tq == 1 (a decode step against a cache of s.Tk keys; the causal flag changes
// nothing there), split along the keys: scratch [flash_decode_scratch_floats(s)] (may be null
// when that is 0). Writes the same out and lse as flash_attention_forward, up to rounding.
template <typename T>
void flash_attention_decode(T* out, float* lse, float* scratch, const T* q, const T* k, const T* v,
                            const AttentionShape& s, cudaStream_t stream);
)
// clang-format on
