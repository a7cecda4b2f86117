// The backward of flash attention for bf16 storage on tensor cores (simt::mma_m16n8k16_bf16, fp32
// accumulation): the bf16 path of flash_attention_backward in kernels/flash_attention.cuh, same
// contract (dq, dk, dv; each kv head's dk, dv summed over its query heads in-kernel, no atomics, so
// the result is deterministic; causal aligned at the end, Tq != Tk, packed rows via seq_start, rows
// with lse = −inf contribute nothing; d any multiple of 8 in [8, 128]).
//
// FlashAttention-2's backward in three kernels; the seven products run on tensor cores:
//   K0  the SIMT flash_rowdot_kernel: D = rowsum(dO ∘ O) into scratch [B, Hq, Tq].
//   K1  dK, dV, grid (⌈Tk/64⌉, Hkv, B), 4 warps; warp w owns keys j0 + 16w .. j0 + 16w + 15.
//       K_j, V_j (64 keys) stay in shared memory; for every query head of the group and every
//       32-row query tile that sees a key of the tile: Sᵀ = K_j Q_iᵀ and dPᵀ = V_j dO_iᵀ (16 keys
//       × 32 queries per warp, keys as the M dimension), Pᵀ = exp(scale·Sᵀ − lse),
//       dSᵀ = Pᵀ ∘ (dPᵀ − D), then dV += Pᵀ dO_i and dK += dSᵀ Q_i. Computing Sᵀ rather than S
//       puts Pᵀ and dSᵀ in the accumulator layout that, rounded to bf16 pairs, is the A fragment
//       of the next product (FA2's register trick), so nothing is transposed through shared
//       memory. dK (times scale at the end) and dV, 16 × d fp32 per warp each, stay in registers
//       and are written once. The query tile is 32 rows, not 64, for registers: dK and dV take
//       d per thread, and 64-row Sᵀ, dPᵀ (64 more) spilled at d = 128.
//   K2  dQ, grid (⌈Tq/64⌉, Hq, B), 4 warps; warp w owns query rows i0 + 16w .. + 15. For every
//       64-key tile the rows see: S = Q_i K_jᵀ, dP = dO_i V_jᵀ, P, dS as in K1, dQ += dS K_j; dQ
//       (times scale) in registers, written once. S and dP are computed twice (K1, K2) instead of
//       adding dQ with atomics.
// P and dS are rounded to bf16 as the A operands of the second products, as FA2 does; the scores,
// softmax, dS and all accumulators are fp32.
//
// Shared memory: bf16 tiles stored as 32-bit words (pairs of dims: the fragments' unit) with the
// head dim zero-padded to dp = ⌈d/16⌉·16 (whole k16 steps over d; d = 72 → 80) and a row stride
// of dp/2 + 4 words: stride ≡ 4 (mod 8) words, so the 8 row groups × 4 word columns of a fragment
// load hit 32 different banks; the column loads of Pᵀ·dO, dSᵀ·Q and dS·K (rows 2t, 2t + 1 per
// register, one half each) read 16 different words per warp, also conflict-free (ldmatrix.trans
// would do this in one instruction; the portable layer has no ldmatrix). K1: K, V (64 rows), Q, dO
// (32 rows), lse, D, sample starts: 2·96·(dp + 8)·2 + 384 B, d = 128: 52.6 KB. K2: Q, dO, K, V
// (64 rows): 4·64·(dp + 8)·2 B, d = 128: 69.6 KB. Both above the 48 KB default: opted in. Global
// rows are read as 16-byte vectors when the pointer allows (a row is a multiple of 16 bytes).
//
// Registers (ptxas, sm_90 / sm_80), no spills: K1 d = 128: 236 / 232 (dK, dV: 128 accumulators;
// Sᵀ, dPᵀ: 32), d = 64: 144 / 150; K2 d = 128: 224 / 237 (dQ: 64; S, dP: 64), d = 64: 165 / 168.
// At d = 128 two 128-thread blocks per SM fit by registers (K1 and K2).
//
// Cost. S = visible scores = B·Hq·Tq·Tk (≈ half with causal; diagonal tiles are computed whole).
// 14·d·S tensor FLOPs (K1: Sᵀ, dPᵀ, dV, dK = 8·d·S; K2: S, dP, dQ = 6·d·S) + ~10·S fp32 (exp,
// masks, dS). DRAM as the SIMT kernels: K1 re-reads Q, dO per 64-key tile and K2 K, V per 64-row
// query tile, from L2. minimind2-small (B = 4, T = 512, Hq = 8, Hkv = 2, d = 64, causal):
// S = 4.19 M, 3.76 GFLOP → 3.8 µs at the H100 SXM's 989 TFLOP/s dense bf16 peak (the SIMT backward:
// 56 µs at the 67 TFLOP/s fp32 peak); DRAM ≈ 18 MB → 5.3 µs at 3.35 TB/s, so at this size memory
// and latency bound (K1 has 64 blocks for 132 SMs). The kernels load a tile, then compute on it
// (no cp.async double buffering): expect a fraction of the tensor peak even at long sequences.
#pragma once

#include <cmath>
#include <cstdint>

// Included by kernels/flash_attention.cuh after its shared helpers (key_begin, key_end,
// row_offset, stat_offset, flash_rowdot_kernel, with_head_dim_capacity), which it uses.
#include "kernels/common.cuh"
#include "kernels/flash_attention.h"

namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND::tc_backward {

inline constexpr int kTcTile = 64;                // K1's key tile, K2's query and key tiles
inline constexpr int kTcQueryTile = 32;           // K1's query tile (registers: see above)
inline constexpr int kTcWarps = kTcTile / 16;     // one 16-row slice per warp
inline constexpr int kTcThreads = 32 * kTcWarps;  // 128
static_assert(kTcThreads == 128);

// Head dim padded to whole k16 steps, and the shared row stride in 32-bit words.
__host__ __device__ constexpr int tc_padded_dim(int d) { return (d + 15) / 16 * 16; }
__host__ __device__ constexpr int tc_row_words(int d) { return tc_padded_dim(d) / 2 + 4; }

// Eight bf16 (16 bytes) of global memory as four pairs.
__device__ __forceinline__ void tc_load8(std::uint32_t (&w)[4], const bf16* p) {
  load_bf16x8(w, p, (reinterpret_cast<std::uintptr_t>(p) & 15) == 0);
}

// dst[r·ldw + c] = dims (2c, 2c + 1) of row row0 + r of head `head`, for r < rows; rows at or
// past len and dims at or past d are zero (masked scores never meet garbage; padding adds 0).
__device__ void tc_load_tile(std::uint32_t* dst, const bf16* src, int b, int len, int heads,
                             int head, int row0, int d, int rows = kTcTile) {
  const int chunks = tc_padded_dim(d) / 8, ldw = tc_row_words(d);
  for (int idx = static_cast<int>(threadIdx.x); idx < rows * chunks; idx += kTcThreads) {
    const int r = idx / chunks, c = idx % chunks, row = row0 + r;
    std::uint32_t w[4] = {0, 0, 0, 0};
    if (row < len && 8 * c < d) tc_load8(w, src + row_offset(b, len, heads, head, row, d) + 8 * c);
    std::uint32_t* out = dst + r * ldw + 4 * c;
    MINIVLM_UNROLL
    for (int i = 0; i < 4; ++i) out[i] = w[i];
  }
}

// Fragment loads from a tile (g = lane / 4, t = lane % 4). The A fragment of rows row0 .. row0 + 15
// and k16 step kk along the dims.
__device__ __forceinline__ void tc_frag_a(std::uint32_t (&a)[4], const std::uint32_t* tile, int ldw,
                                          int row0, int kk, int g, int t) {
  const std::uint32_t* p = tile + (row0 + g) * ldw + 8 * kk + t;
  a[0] = p[0];
  a[1] = p[8 * ldw];
  a[2] = p[4];
  a[3] = p[8 * ldw + 4];
}
// The B fragment of k16 step kk along the dims, n8 column block = tile rows row0 .. row0 + 7
// (B = tileᵀ: S = A·tileᵀ).
__device__ __forceinline__ void tc_frag_bt(std::uint32_t (&b)[2], const std::uint32_t* tile,
                                           int ldw, int row0, int kk, int g, int t) {
  const std::uint32_t* p = tile + (row0 + g) * ldw + 8 * kk + t;
  b[0] = p[0];
  b[1] = p[4];
}
// The B fragment of k16 step over tile rows row0 .. row0 + 15, n8 block of dims 8n .. 8n + 7
// (B = tile itself: rows are the k index; each register pairs two rows' halves).
__device__ __forceinline__ void tc_frag_b(std::uint32_t (&b)[2], const std::uint32_t* tile, int ldw,
                                          int row0, int n, int g, int t) {
  const int shift = 16 * (g & 1);
  const std::uint32_t* p = tile + (row0 + 2 * t) * ldw + 4 * n + g / 2;
  MINIVLM_UNROLL
  for (int i = 0; i < 2; ++i) {
    const std::uint32_t lo = (p[8 * i * ldw] >> shift) & 0xffffu;
    const std::uint32_t hi = (p[(8 * i + 1) * ldw] >> shift) & 0xffffu;
    b[i] = lo | (hi << 16);
  }
}

// acc[n] (16 rows × 8·kCols columns, n8 blocks) = rows row0 .. row0 + 15 of `a` times tileᵀ,
// over the dp/16 k16 steps of the head dim.
template <int kSteps, int kCols>
__device__ __forceinline__ void tc_scores(float (&acc)[kCols][4], const std::uint32_t* a_tile,
                                          const std::uint32_t* b_tile, int ldw, int row0, int steps,
                                          int g, int t) {
  MINIVLM_UNROLL
  for (int n = 0; n < kCols; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
  MINIVLM_UNROLL
  for (int kk = 0; kk < kSteps; ++kk) {
    if (kk < steps) {
      std::uint32_t a[4];
      tc_frag_a(a, a_tile, ldw, row0, kk, g, t);
      MINIVLM_UNROLL
      for (int n = 0; n < kCols; ++n) {
        std::uint32_t b[2];
        tc_frag_bt(b, b_tile, ldw, 8 * n, kk, g, t);
        simt::mma_m16n8k16_bf16(acc[n], a, b, acc[n]);
      }
    }
  }
}

// The A fragment of k16 step j from accumulators of n8 blocks 2j, 2j + 1 (rounded to bf16).
template <int kCols>
__device__ __forceinline__ void tc_acc_to_a(std::uint32_t (&a)[4], const float (&acc)[kCols][4],
                                            int j) {
  a[0] = pack_bf16x2(acc[2 * j][0], acc[2 * j][1]);
  a[1] = pack_bf16x2(acc[2 * j][2], acc[2 * j][3]);
  a[2] = pack_bf16x2(acc[2 * j + 1][0], acc[2 * j + 1][1]);
  a[3] = pack_bf16x2(acc[2 * j + 1][2], acc[2 * j + 1][3]);
}

// acc[n] (16 × d) += frags (16 × 16·kK, k16 steps) · tile rows 0 .. 16·kK − 1 (× d), n8 blocks
// n < d/8.
template <int kN, int kK>
__device__ __forceinline__ void tc_accumulate(float (&acc)[kN][4],
                                              const std::uint32_t (&frags)[kK][4],
                                              const std::uint32_t* tile, int ldw, int d, int g,
                                              int t) {
  MINIVLM_UNROLL
  for (int n = 0; n < kN; ++n) {
    if (8 * n < d) {
      MINIVLM_UNROLL
      for (int j = 0; j < kK; ++j) {
        std::uint32_t b[2];
        tc_frag_b(b, tile, ldw, 16 * j, n, g, t);
        simt::mma_m16n8k16_bf16(acc[n], frags[j], b, acc[n]);
      }
    }
  }
}

// Writes factor · acc (16 rows × d of the warp) to rows row0 + r < len of head `head`.
template <int kN>
__device__ __forceinline__ void tc_store_rows(bf16* dst, const float (&acc)[kN][4], float factor,
                                              int b, int len, int heads, int head, int row0, int d,
                                              int g, int t) {
  MINIVLM_UNROLL
  for (int half = 0; half < 2; ++half) {
    const int row = row0 + g + 8 * half;
    if (row >= len) continue;
    bf16* out = dst + row_offset(b, len, heads, head, row, d);
    MINIVLM_UNROLL
    for (int n = 0; n < kN; ++n) {
      if (8 * n < d) {
        out[8 * n + 2 * t] = from_float<bf16>(factor * acc[n][2 * half]);
        out[8 * n + 2 * t + 1] = from_float<bf16>(factor * acc[n][2 * half + 1]);
      }
    }
  }
}

// K1's query tiles [i0, i0 + 32) that see key tile j0 start at tc_first_query_tile (causal); key
// tiles seen by query tile i0 are [tc_key_tile_begin, tc_key_tile_end).
__device__ __forceinline__ int tc_first_query_tile(const AttentionShape& s, int j0) {
  const int first = s.causal ? j0 - (s.Tk - s.Tq) : 0;
  return first < 0 ? 0 : first / kTcQueryTile * kTcQueryTile;
}
__device__ __forceinline__ int tc_key_tile_end(const AttentionShape& s, int i0) {
  const int last = i0 + kTcTile < s.Tq ? i0 + kTcTile - 1 : s.Tq - 1;
  return key_end(s, last);
}
__device__ __forceinline__ int tc_key_tile_begin(const AttentionShape& s, int b, int i0) {
  return key_begin(s, b, i0) / kTcTile * kTcTile;
}

template <int kMaxD, bool kPacked>
__global__ void __launch_bounds__(kTcThreads)
    flash_tc_dkdv_kernel(bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                         const bf16* v, const float* lse, const float* D, AttentionShape s,
                         float scale) {
  constexpr int kCols = kTcQueryTile / 8, kN = kMaxD / 8, kSteps = kMaxD / 16 + (kMaxD % 16 != 0);
  const int d = s.d, ldw = tc_row_words(d), steps = tc_padded_dim(d) / 16;
  std::uint32_t* Ks = dynamic_smem<std::uint32_t>();
  std::uint32_t* Vs = Ks + kTcTile * ldw;
  std::uint32_t* Qs = Vs + kTcTile * ldw;
  std::uint32_t* dOs = Qs + kTcQueryTile * ldw;
  float* Ls = reinterpret_cast<float*>(dOs + kTcQueryTile * ldw);
  float* Ds = Ls + kTcQueryTile;
  int* Ss = reinterpret_cast<int*>(Ds + kTcQueryTile);
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  const int j0 = static_cast<int>(blockIdx.x) * kTcTile, kh = static_cast<int>(blockIdx.y);
  const int b = static_cast<int>(blockIdx.z), group = s.Hq / s.Hkv;
  const int row0 = 16 * warp;  // the warp's keys in the tile
  tc_load_tile(Ks, k, b, s.Tk, s.Hkv, kh, j0, d);
  tc_load_tile(Vs, v, b, s.Tk, s.Hkv, kh, j0, d);
  float acc_k[kN][4], acc_v[kN][4];
  MINIVLM_UNROLL
  for (int n = 0; n < kN; ++n) {
    MINIVLM_UNROLL
    for (int i = 0; i < 4; ++i) acc_k[n][i] = acc_v[n][i] = 0.0f;
  }
  const int first = tc_first_query_tile(s, j0), last_key = j0 + kTcTile - 1;
  for (int h = kh * group; h < (kh + 1) * group; ++h) {
    // Packed rows: query tiles whose first row starts a sample after this key tile see none of
    // its keys, nor do the later ones.
    for (int i0 = first; i0 < s.Tq && (!kPacked || key_begin(s, b, i0) <= last_key);
         i0 += kTcQueryTile) {
      __syncthreads();  // K, V are in place; the previous query tile is no longer read
      tc_load_tile(Qs, q, b, s.Tq, s.Hq, h, i0, d, kTcQueryTile);
      tc_load_tile(dOs, dout, b, s.Tq, s.Hq, h, i0, d, kTcQueryTile);
      if (tid < kTcQueryTile) {
        const int qi = i0 + tid;
        Ls[tid] = qi < s.Tq ? lse[stat_offset(s, b, h, qi)] : -INFINITY;
        Ds[tid] = qi < s.Tq ? D[stat_offset(s, b, h, qi)] : 0.0f;
        Ss[tid] = kPacked ? key_begin(s, b, qi) : 0;
      }
      __syncthreads();
      // Pᵀ and dSᵀ of the warp's 16 keys × the tile's 32 queries, in accumulator layout:
      // element [n][i] is key row0 + g + 8·(i / 2), query 8n + 2t + i % 2.
      float p[kCols][4], ds[kCols][4];
      tc_scores<kSteps, kCols>(p, Ks, Qs, ldw, row0, steps, g, t);
      tc_scores<kSteps, kCols>(ds, Vs, dOs, ldw, row0, steps, g, t);
      MINIVLM_UNROLL
      for (int n = 0; n < kCols; ++n) {
        MINIVLM_UNROLL
        for (int i = 0; i < 4; ++i) {
          const int key = j0 + row0 + g + 8 * (i / 2), r = 8 * n + 2 * t + i % 2, qi = i0 + r;
          const bool visible =
              kPacked ? key <= qi && key >= Ss[r] && qi < s.Tq : key < key_end(s, qi);
          const float l = Ls[r];
          const float pr = visible && l != -INFINITY ? expf(scale * p[n][i] - l) : 0.0f;
          p[n][i] = pr;
          ds[n][i] = pr * (ds[n][i] - Ds[r]);
        }
      }
      std::uint32_t fa[kCols / 2][4];
      MINIVLM_UNROLL
      for (int j = 0; j < kCols / 2; ++j) tc_acc_to_a(fa[j], p, j);
      tc_accumulate(acc_v, fa, dOs, ldw, d, g, t);
      MINIVLM_UNROLL
      for (int j = 0; j < kCols / 2; ++j) tc_acc_to_a(fa[j], ds, j);
      tc_accumulate(acc_k, fa, Qs, ldw, d, g, t);
    }
  }
  tc_store_rows(dk, acc_k, scale, b, s.Tk, s.Hkv, kh, j0 + row0, d, g, t);
  tc_store_rows(dv, acc_v, 1.0f, b, s.Tk, s.Hkv, kh, j0 + row0, d, g, t);
}

template <int kMaxD, bool kPacked>
__global__ void __launch_bounds__(kTcThreads)
    flash_tc_dq_kernel(bf16* dq, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
                       const float* lse, const float* D, AttentionShape s, float scale) {
  constexpr int kCols = kTcTile / 8, kN = kMaxD / 8, kSteps = kMaxD / 16 + (kMaxD % 16 != 0);
  const int d = s.d, ldw = tc_row_words(d), steps = tc_padded_dim(d) / 16;
  std::uint32_t* Qs = dynamic_smem<std::uint32_t>();
  std::uint32_t* dOs = Qs + kTcTile * ldw;
  std::uint32_t* Ks = dOs + kTcTile * ldw;
  std::uint32_t* Vs = Ks + kTcTile * ldw;
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  const int i0 = static_cast<int>(blockIdx.x) * kTcTile, h = static_cast<int>(blockIdx.y);
  const int b = static_cast<int>(blockIdx.z), kh = h / (s.Hq / s.Hkv);
  const int row0 = 16 * warp;  // the warp's query rows in the tile
  tc_load_tile(Qs, q, b, s.Tq, s.Hq, h, i0, d);
  tc_load_tile(dOs, dout, b, s.Tq, s.Hq, h, i0, d);
  // The lane's two query rows: i0 + row0 + g + 8·half.
  float row_lse[2], row_D[2];
  int row_end[2], row_begin[2];
  MINIVLM_UNROLL
  for (int half = 0; half < 2; ++half) {
    const int qi = i0 + row0 + g + 8 * half;
    row_lse[half] = qi < s.Tq ? lse[stat_offset(s, b, h, qi)] : -INFINITY;
    row_D[half] = qi < s.Tq ? D[stat_offset(s, b, h, qi)] : 0.0f;
    row_end[half] = kPacked ? (qi < s.Tq ? qi + 1 : 0) : key_end(s, qi);
    row_begin[half] = kPacked ? key_begin(s, b, qi) : 0;
  }
  float acc[kN][4];
  MINIVLM_UNROLL
  for (int n = 0; n < kN; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
  const int block_begin = kPacked ? tc_key_tile_begin(s, b, i0) : 0;
  const int block_end = tc_key_tile_end(s, i0);
  for (int j0 = block_begin; j0 < block_end; j0 += kTcTile) {
    __syncthreads();  // Q, dO are in place; the previous key tile is no longer read
    tc_load_tile(Ks, k, b, s.Tk, s.Hkv, kh, j0, d);
    tc_load_tile(Vs, v, b, s.Tk, s.Hkv, kh, j0, d);
    __syncthreads();
    // P and dS of the warp's 16 queries × the tile's 64 keys: element [n][i] is query
    // row0 + g + 8·(i / 2), key j0 + 8n + 2t + i % 2.
    float p[kCols][4], ds[kCols][4];
    tc_scores<kSteps, kCols>(p, Qs, Ks, ldw, row0, steps, g, t);
    tc_scores<kSteps, kCols>(ds, dOs, Vs, ldw, row0, steps, g, t);
    MINIVLM_UNROLL
    for (int n = 0; n < kCols; ++n) {
      MINIVLM_UNROLL
      for (int i = 0; i < 4; ++i) {
        const int half = i / 2, key = j0 + 8 * n + 2 * t + i % 2;
        const bool visible = key >= row_begin[half] && key < row_end[half];
        const float l = row_lse[half];
        const float pr = visible && l != -INFINITY ? expf(scale * p[n][i] - l) : 0.0f;
        ds[n][i] = pr * (ds[n][i] - row_D[half]);
      }
    }
    std::uint32_t fa[kCols / 2][4];
    MINIVLM_UNROLL
    for (int j = 0; j < kCols / 2; ++j) tc_acc_to_a(fa[j], ds, j);
    tc_accumulate(acc, fa, Ks, ldw, d, g, t);
  }
  tc_store_rows(dq, acc, scale, b, s.Tq, s.Hq, h, i0 + row0, d, g, t);
}

// The bf16 backward: K0 (SIMT rowsum), then K2 (dQ) and K1 (dK, dV) on tensor cores.
inline void flash_attention_backward_tc(bf16* dq, bf16* dk, bf16* dv, float* scratch,
                                        const bf16* dout, const bf16* q, const bf16* k,
                                        const bf16* v, const bf16* out, const float* lse,
                                        const AttentionShape& s, cudaStream_t stream) {
  const float scale = attention_scale(s.d);
  const std::size_t row_bytes = static_cast<std::size_t>(tc_row_words(s.d)) * 4;
  with_head_dim_capacity(s.d, [&](auto cap) {
    constexpr int kMaxD = decltype(cap)::value;
    if (s.Tq > 0) {
      simt::launch(flash_rowdot_kernel<bf16>,
                   dim3(static_cast<unsigned>(ceil_div(s.Tq, kFlashTile)), s.Hq, s.B),
                   kFlashThreads, 0, stream, scratch, dout, out, s);
      const auto dq_kernel = s.seq_start != nullptr ? flash_tc_dq_kernel<kMaxD, true>
                                                    : flash_tc_dq_kernel<kMaxD, false>;
      const std::size_t dq_smem = 4 * kTcTile * row_bytes;
      allow_dynamic_smem(dq_kernel, dq_smem);
      simt::launch(dq_kernel, dim3(static_cast<unsigned>(ceil_div(s.Tq, kTcTile)), s.Hq, s.B),
                   kTcThreads, dq_smem, stream, dq, dout, q, k, v, lse,
                   static_cast<const float*>(scratch), s, scale);
    }
    if (s.Tk > 0) {
      const auto kv_kernel = s.seq_start != nullptr ? flash_tc_dkdv_kernel<kMaxD, true>
                                                    : flash_tc_dkdv_kernel<kMaxD, false>;
      const std::size_t smem =
          2 * (kTcTile + kTcQueryTile) * row_bytes + 3 * kTcQueryTile * sizeof(float);
      allow_dynamic_smem(kv_kernel, smem);
      simt::launch(kv_kernel, dim3(static_cast<unsigned>(ceil_div(s.Tk, kTcTile)), s.Hkv, s.B),
                   kTcThreads, smem, stream, dk, dv, dout, q, k, v, lse,
                   static_cast<const float*>(scratch), s, scale);
    }
  });
}

}  // namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND::tc_backward
