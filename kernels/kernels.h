// The kernel launchers, as host code sees them. The same kernels are built twice: by nvcc for the
// GPU (library minivlm_kernels_cuda, namespace minivlm::kernels::gpu) and by g++ for the SIMT
// emulator (library minivlm_kernels_emu, namespace minivlm::kernels::emu); both namespaces declare
// the launchers of kernels/launchers.inc with the same signatures, so host code picks a back-end by
// namespace alone. This header needs no CUDA compiler.
//
// Each launcher template is defined in its kernels/<family>.cuh and instantiated there for float
// and bf16 storage; arithmetic is fp32 whatever the storage.
#pragma once

#include <algorithm>
#include <cstddef>

#include <cuda_bf16.h>
#include <driver_types.h>

namespace minivlm::kernels {

using bf16 = __nv_bfloat16;

// Backward passes of the norms reduce their weight gradients in two deterministic steps: each of
// at most kNormBackwardBlocks blocks sums its own rows into a scratch row, then a column sum adds
// the scratch rows in order.
inline constexpr int kNormBackwardBlocks = 256;
inline constexpr std::size_t rmsnorm_backward_scratch_floats(int N, int C) {
  return static_cast<std::size_t>(std::min(N, kNormBackwardBlocks)) * static_cast<std::size_t>(C);
}
inline constexpr std::size_t layernorm_backward_scratch_floats(int N, int C) {
  return 2 * rmsnorm_backward_scratch_floats(N, C);
}

// Column sums over many rows (bias gradients) first sum chunks of kColumnSumChunkRows rows into
// scratch rows, then sum those.
inline constexpr int kColumnSumChunkRows = 256;
inline constexpr std::size_t column_sum_scratch_floats(int R, int C) {
  const int chunks = (R + kColumnSumChunkRows - 1) / kColumnSumChunkRows;
  return chunks > 1 ? static_cast<std::size_t>(chunks) * static_cast<std::size_t>(C) : 0;
}

// The global gradient norm writes one partial sum per block; a tensor of n elements uses this many
// blocks (so the host can size the partials buffer and place the next tensor's partials).
inline constexpr int kGlobalNormMaxBlocks = 1024;
inline constexpr int kGlobalNormBlockSize = 512;
inline constexpr int global_norm_partial_count(std::size_t n,
                                               int block_size = kGlobalNormBlockSize) {
  const std::size_t blocks =
      (n + static_cast<std::size_t>(block_size) - 1) / static_cast<std::size_t>(block_size);
  return static_cast<int>(std::clamp<std::size_t>(blocks, 1, kGlobalNormMaxBlocks));
}

inline constexpr int kIgnoreIndex = -100;

// Attention shapes (flash_attention.cuh): q [B, Tq, Hq, d], k, v [B, Tk, Hkv, d], Hq % Hkv == 0;
// causal: query row i sees keys j <= i + Tk - Tq.
struct AttentionShape {
  int B = 0, Tq = 0, Tk = 0, Hq = 0, Hkv = 0, d = 0;
  bool causal = false;
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

#define MINIVLM_KERNELS_NAMESPACE emu
#include "kernels/launchers.inc"
#undef MINIVLM_KERNELS_NAMESPACE

#define MINIVLM_KERNELS_NAMESPACE gpu
#include "kernels/launchers.inc"
#undef MINIVLM_KERNELS_NAMESPACE
