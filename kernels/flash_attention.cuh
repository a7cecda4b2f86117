// Fused scaled-dot-product attention in the FlashAttention-2 form: the Tq × Tk score matrix never
// reaches memory. q, out [B, Tq, Hq, d], k, v [B, Tk, Hkv, d] (row-major), query head h reads kv
// head h / (Hq / Hkv), scale = 1/sqrt(d), causal aligned at the end (query row r sees keys
// c ≤ r + Tk − Tq). lse [B, Hq, Tq] fp32 = m + log Σ exp(s − m) per row (−inf for a row that sees
// no key; its output is 0), saved for the backward. Storage T is float or bf16, arithmetic fp32.
//
// Tiles: Br = Bc = 32 rows of d ≤ 128 fp32 values in shared memory with a row stride of d + 1
// (the 4 lanes of a row read 4 different tile rows: no bank conflict). 128 threads = 4 warps;
// 4 consecutive lanes own one tile row: lane l holds the scores of columns l, l + 4, ..., and
// the accumulators of dims l, l + 4, ... (d/4 registers), so row max / sum are two xor shuffles.
// The head dim is a runtime value, ≤ a compile-time capacity of 32, 64, 96 or 128 that sizes the
// register arrays; any multiple of 8 in [8, 128] is accepted.
//
//   forward   grid (⌈Tq/32⌉, Hq, B): Q_i (pre-scaled) stays in shared memory; for each KV
//             tile up to the diagonal: S = Q_i K_jᵀ, online softmax (m, l), P through shared
//             memory, acc = α·acc + P V_j. Shared: (3·32·(d+1) + 32·33)·4 B (d = 128: 53.8 KB,
//             above the 48 KB default: opted in).
//   backward  K0 grid (⌈Tq/32⌉, Hq, B): D = rowsum(dO ∘ O) into scratch [B, Hq, Tq].
//             K1 grid (⌈Tk/32⌉, Hkv, B): K_j, V_j in shared memory, for every query head of the
//             group and query tile at/below the diagonal: P = exp(S − lse), dP = dO Vᵀ,
//             dS = P ∘ (dP − D); dV += Pᵀ dO, dK += dSᵀ (scale·Q) in registers, written once
//             (the group sum happens in-kernel: deterministic, no atomics). Shared:
//             (4·32·(d+1) + 2·32·33 + 96)·4 B (d = 128: 74.9 KB).
//             K2 grid (⌈Tq/32⌉, Hq, B): recomputes S, P, dP, dS per KV tile; dQ = scale·Σ dS K_j.
//             Shared: (4·32·(d+1) + 32·33)·4 B (d = 128: 70.3 KB).
//             bf16 storage runs K1 and K2 on tensor cores instead (64-row tiles, P and dS rounded
//             to bf16 as operands): kernels/flash_attention_tc_backward.cuh.
//   decode    Tq = 1 (one query row per (b, h) against a cache of L keys): grid (⌈L/128⌉, Hq, B),
//             128 threads, one key per thread: scores, block max / sum, then thread t < d sums
//             P·V over the chunk for dim t. One chunk writes out and lse directly; more chunks
//             write (m, l, acc[d]) partials to scratch and a combine kernel, grid (Hq, B), merges
//             them in chunk order.
//
// Packed rows (s.seq_start, variable-length attention): query i sees keys [seq_start[i], i]. The
// forward and K2 start at the key tile holding their query tile's first sample start; K1 stops at
// the first query tile whose first row starts a sample after the key tile. Within a tile the
// other samples' keys are masked like the causal ones. Without seq_start every bound is the one
// above, so the unpacked path computes the same bits.
//
// Cost. S = visible scores = B·Hq·Tq·Tk (≈ half with causal; diagonal tiles are computed whole),
// e = sizeof(T). Roofline numbers used: H100 SXM 3.35 TB/s HBM, 67 TFLOP/s fp32 FMA without
// tensor cores (these kernels are SIMT).
//   forward   4·d·S FLOPs (QKᵀ, PV) + ~6·S (mask, exp, sums). DRAM: Q and O once, K and V once
//             per kv head, 2·e·B·d·(Hq·Tq + Hkv·Tk) + 4·B·Hq·Tq (lse); K, V are re-read per query
//             tile and per query head of the group from L2 (2·e·B·Hq·Tk·d·⌈Tq/32⌉, ½ causal).
//   backward  14·d·S FLOPs: K1 4 products (QKᵀ, dO Vᵀ, Pᵀ dO, dSᵀ Q), K2 3 (QKᵀ, dO Vᵀ, dS K),
//             i.e. S and dP are computed twice instead of adding dQ with atomics. DRAM:
//             K0 reads dO, O (2·e·B·Hq·Tq·d); K1 reads Q, dO, K, V, writes dK, dV
//             (2·e·B·Hq·Tq·d + 4·e·B·Hkv·Tk·d; Q, dO re-read per KV tile from L2); K2 reads Q, dO,
//             K, V, writes dQ (3·e·B·Hq·Tq·d + 2·e·B·Hkv·Tk·d).
//   decode    4·d·B·Hq·L FLOPs; DRAM 2·e·B·Hkv·L·d (K, V; the group's other heads hit L2) +
//             2·4·B·Hq·⌈L/128⌉·(d + 2) through scratch when split. Memory-bound.
// Worked example, minimind2-small (hidden 512, Hq = 8 heads of d = 64, Hkv = 2), B = 4, T = 512,
// causal, bf16: S = 4·8·512·512/2 = 4.19 M.
//   forward   1.07 GFLOP → 16 µs at 67 TFLOP/s; DRAM 4.2 MB (Q, O) + 1.0 MB (K, V) → 1.6 µs.
//             Compute-bound 10×. The score and PV loops issue one shared-memory load per FMA
//             (LDS: 32 lanes/clock/SM against 128 FMA lanes), so expect ~¼ of that peak, ~65 µs.
//   backward  3.76 GFLOP → 56 µs; DRAM ≈ 4.2 (K0) + 6.3 (K1) + 7.3 (K2) ≈ 18 MB → 5.3 µs.
//             Compute-bound.
//   decode    (one new token, L = 512) 4.2 MFLOP; 1.05 MB of K, V → 0.31 µs, memory-bound (each
//             thread reads its own key row of d values: 128-byte rows, not coalesced across the
//             warp, so expect several times that).
#pragma once

#include <cmath>
#include <string>
#include <type_traits>

#include "kernels/flash_attention.h"
#include "kernels/reduce.cuh"

#ifdef __CUDACC__
#define MINIVLM_UNROLL _Pragma("unroll")
#else
#define MINIVLM_UNROLL
#endif

namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND {

inline constexpr int kFlashTile = 32;  // Br = Bc
inline constexpr int kFlashLanes = 4;  // lanes per tile row
inline constexpr int kFlashThreads = kFlashTile * kFlashLanes;
inline constexpr int kFlashPerLane = kFlashTile / kFlashLanes;  // scores per lane and tile
inline constexpr int kDecodeThreads = kFlashDecodeChunk;
static_assert(kFlashThreads == 128 && kDecodeThreads == 128);

// Keys [key_begin(s, b, i), key_end(s, i)) are visible to query row i of batch row b; rows
// outside [0, Tq) see none.
__device__ __forceinline__ int key_begin(const AttentionShape& s, int b, int i) {
  if (s.seq_start == nullptr || i < 0 || i >= s.Tq) return 0;
  return s.seq_start[static_cast<std::size_t>(b) * s.Tq + i];
}

__device__ __forceinline__ int key_end(const AttentionShape& s, int i) {
  if (i < 0 || i >= s.Tq) return 0;
  if (!s.causal) return s.Tk;
  const int e = i + 1 + s.Tk - s.Tq;
  return e < 0 ? 0 : (e > s.Tk ? s.Tk : e);
}

__device__ __forceinline__ std::size_t row_offset(int b, int len, int heads, int head, int row,
                                                  int d) {
  return ((static_cast<std::size_t>(b) * len + row) * heads + head) * static_cast<std::size_t>(d);
}

__device__ __forceinline__ std::size_t stat_offset(const AttentionShape& s, int b, int h, int i) {
  return (static_cast<std::size_t>(b) * s.Hq + h) * s.Tq + i;
}

// dst[r·(d+1) + k] = factor · src row (row0 + r) of head `head`, for r < kFlashTile; rows at or
// past len are zero (so masked scores never meet NaN-filled shared memory).
template <typename T>
__device__ void load_tile(float* dst, const T* src, int b, int len, int heads, int head, int row0,
                          int d, float factor) {
  const int ld = d + 1;
  for (int idx = static_cast<int>(threadIdx.x); idx < kFlashTile * d; idx += kFlashThreads) {
    const int r = idx / d, k = idx % d;
    const int row = row0 + r;
    dst[r * ld + k] =
        row < len ? factor * to_float(src[row_offset(b, len, heads, head, row, d) + k]) : 0.0f;
  }
}

// out[t] = Σ_k fixed[k] · rows[t·kFlashLanes·ld + k], k ascending: the same products in the same
// order wherever a score (or dP) is computed, so forward and backward see the same bits.
__device__ __forceinline__ void dot_rows(float (&out)[kFlashPerLane], const float* fixed,
                                         const float* rows, int d) {
  const int stride = kFlashLanes * (d + 1);
  MINIVLM_UNROLL
  for (int t = 0; t < kFlashPerLane; ++t) out[t] = 0.0f;
  for (int k = 0; k < d; ++k) {
    const float f = fixed[k];
    MINIVLM_UNROLL
    for (int t = 0; t < kFlashPerLane; ++t) out[t] += f * rows[t * stride + k];
  }
}

// Reductions over the 4 lanes of a tile row; every lane gets the same bits.
__device__ __forceinline__ float row_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(kFullMask, v, 1));
  return fmaxf(v, __shfl_xor_sync(kFullMask, v, 2));
}
__device__ __forceinline__ float row_sum(float v) {
  v += __shfl_xor_sync(kFullMask, v, 1);
  return v + __shfl_xor_sync(kFullMask, v, 2);
}

// Keys the causal mask lets query rows [i0, i0 + kFlashTile) see at all.
__device__ __forceinline__ int tile_key_end(const AttentionShape& s, int i0) {
  const int last = i0 + kFlashTile < s.Tq ? i0 + kFlashTile - 1 : s.Tq - 1;
  return key_end(s, last);
}

// The first key tile any of query rows [i0, i0 + kFlashTile) of batch row b sees (seq_start
// does not decrease along a row, so row i0's sample starts first).
__device__ __forceinline__ int tile_key_begin(const AttentionShape& s, int b, int i0) {
  return key_begin(s, b, i0) / kFlashTile * kFlashTile;
}

template <typename T, int kMaxD, bool kPacked>
__global__ void __launch_bounds__(kFlashThreads)
    flash_forward_kernel(T* out, float* lse, const T* q, const T* k, const T* v, AttentionShape s,
                         float scale) {
  constexpr int kDims = kMaxD / kFlashLanes;
  const int d = s.d, ld = d + 1, pld = kFlashTile + 1;
  float* Qs = dynamic_smem<float>();
  float* Ks = Qs + kFlashTile * ld;
  float* Vs = Ks + kFlashTile * ld;
  float* Ps = Vs + kFlashTile * ld;
  const int tid = static_cast<int>(threadIdx.x), row = tid / kFlashLanes, lane = tid % kFlashLanes;
  const int i0 = static_cast<int>(blockIdx.x) * kFlashTile, h = static_cast<int>(blockIdx.y);
  const int b = static_cast<int>(blockIdx.z), kh = h / (s.Hq / s.Hkv);
  const int qi = i0 + row, block_end = tile_key_end(s, i0);
  // Row qi sees keys [0, end), or packed [begin, qi]: key tiles before the tile's first sample
  // are skipped, and an earlier sample's keys inside a tile masked.
  const int end = kPacked ? 0 : key_end(s, qi), begin = kPacked ? key_begin(s, b, qi) : 0;
  const int block_begin = kPacked ? tile_key_begin(s, b, i0) : 0;
  load_tile(Qs, q, b, s.Tq, s.Hq, h, i0, d, scale);
  float m = -INFINITY, l = 0.0f, acc[kDims];
  MINIVLM_UNROLL
  for (int t = 0; t < kDims; ++t) acc[t] = 0.0f;
  for (int j0 = block_begin; j0 < block_end; j0 += kFlashTile) {
    __syncthreads();  // Q is in place; the previous tile's K, V are no longer read
    load_tile(Ks, k, b, s.Tk, s.Hkv, kh, j0, d, 1.0f);
    load_tile(Vs, v, b, s.Tk, s.Hkv, kh, j0, d, 1.0f);
    __syncthreads();
    float sc[kFlashPerLane];
    dot_rows(sc, Qs + row * ld, Ks + lane * ld, d);
    float mx = -INFINITY;
    MINIVLM_UNROLL
    for (int t = 0; t < kFlashPerLane; ++t) {
      const int col = j0 + lane + t * kFlashLanes;
      if (kPacked ? col > qi || col < begin : col >= end) sc[t] = -INFINITY;
      mx = fmaxf(mx, sc[t]);
    }
    const float m_new = fmaxf(m, row_max(mx));
    const float base = m_new == -INFINITY ? 0.0f : m_new;
    const float alpha = expf(m - base);
    float sum = 0.0f;
    MINIVLM_UNROLL
    for (int t = 0; t < kFlashPerLane; ++t) {
      const float p = expf(sc[t] - base);
      Ps[row * pld + lane + t * kFlashLanes] = p;
      sum += p;
    }
    l = alpha * l + row_sum(sum);
    m = m_new;
    __syncwarp();  // the row's 4 lanes (one warp) exchange P
    MINIVLM_UNROLL
    for (int t = 0; t < kDims; ++t) acc[t] *= alpha;
    for (int c = 0; c < kFlashTile; ++c) {
      const float p = Ps[row * pld + c];
      const float* vrow = Vs + c * ld + lane;
      MINIVLM_UNROLL
      for (int t = 0; t < kDims; ++t) {
        if (lane + t * kFlashLanes < d) acc[t] += p * vrow[t * kFlashLanes];
      }
    }
  }
  if (qi >= s.Tq) return;
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  T* orow = out + row_offset(b, s.Tq, s.Hq, h, qi, d);
  MINIVLM_UNROLL
  for (int t = 0; t < kDims; ++t) {
    const int dd = lane + t * kFlashLanes;
    if (dd < d) orow[dd] = from_float<T>(acc[t] * inv);
  }
  if (lane == 0) lse[stat_offset(s, b, h, qi)] = l > 0.0f ? m + logf(l) : -INFINITY;
}

// D[b, h, i] = Σ dO ∘ O over the row (the rowsum(P ∘ dP) of the softmax backward).
template <typename T>
__global__ void __launch_bounds__(kFlashThreads)
    flash_rowdot_kernel(float* D, const T* dout, const T* out, AttentionShape s) {
  const int tid = static_cast<int>(threadIdx.x), row = tid / kFlashLanes, lane = tid % kFlashLanes;
  const int h = static_cast<int>(blockIdx.y), b = static_cast<int>(blockIdx.z);
  const int qi = static_cast<int>(blockIdx.x) * kFlashTile + row;
  float acc = 0.0f;
  if (qi < s.Tq) {
    const std::size_t off = row_offset(b, s.Tq, s.Hq, h, qi, s.d);
    for (int dd = lane; dd < s.d; dd += kFlashLanes)
      acc += to_float(dout[off + dd]) * to_float(out[off + dd]);
  }
  acc = row_sum(acc);
  if (qi < s.Tq && lane == 0) D[stat_offset(s, b, h, qi)] = acc;
}

// P and dS of query rows r = lane, lane + 4, ... against the key row `c` of the tile, or of key
// columns lane, lane + 4, ... against query row `r` (the same bits either way: dot_rows).
__device__ __forceinline__ float prob(float score, float lse, bool visible) {
  return visible && lse != -INFINITY ? expf(score - lse) : 0.0f;
}

template <typename T, int kMaxD, bool kPacked>
__global__ void __launch_bounds__(kFlashThreads)
    flash_dkdv_kernel(T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v,
                      const float* lse, const float* D, AttentionShape s, float scale) {
  constexpr int kDims = kMaxD / kFlashLanes;
  const int d = s.d, ld = d + 1, pld = kFlashTile + 1;
  float* Ks = dynamic_smem<float>();
  float* Vs = Ks + kFlashTile * ld;
  float* Qs = Vs + kFlashTile * ld;
  float* dOs = Qs + kFlashTile * ld;
  float* Ps = dOs + kFlashTile * ld;
  float* dSs = Ps + kFlashTile * pld;
  float* Ls = dSs + kFlashTile * pld;
  float* Ds = Ls + kFlashTile;
  int* Ss = reinterpret_cast<int*>(Ds + kFlashTile);
  const int tid = static_cast<int>(threadIdx.x), c = tid / kFlashLanes, lane = tid % kFlashLanes;
  const int j0 = static_cast<int>(blockIdx.x) * kFlashTile, kh = static_cast<int>(blockIdx.y);
  const int b = static_cast<int>(blockIdx.z), group = s.Hq / s.Hkv;
  const int key = j0 + c;
  load_tile(Ks, k, b, s.Tk, s.Hkv, kh, j0, d, 1.0f);
  load_tile(Vs, v, b, s.Tk, s.Hkv, kh, j0, d, 1.0f);
  // The first query row that sees key j0 (causal), rounded down to its tile.
  int first = s.causal ? j0 - (s.Tk - s.Tq) : 0;
  first = first < 0 ? 0 : first / kFlashTile * kFlashTile;
  float acc_k[kDims], acc_v[kDims];
  MINIVLM_UNROLL
  for (int t = 0; t < kDims; ++t) acc_k[t] = acc_v[t] = 0.0f;
  // Packed rows: query tiles whose first row belongs to a sample after this key tile's last key
  // see none of its keys, nor do the later ones.
  const int last_key = j0 + kFlashTile - 1;
  for (int h = kh * group; h < (kh + 1) * group; ++h) {
    for (int i0 = first; i0 < s.Tq && (!kPacked || key_begin(s, b, i0) <= last_key);
         i0 += kFlashTile) {
      __syncthreads();  // K, V are in place; the previous tile's Q, dO, P, dS are no longer read
      load_tile(Qs, q, b, s.Tq, s.Hq, h, i0, d, scale);
      load_tile(dOs, dout, b, s.Tq, s.Hq, h, i0, d, 1.0f);
      if (tid < kFlashTile) {
        const int qi = i0 + tid;
        Ls[tid] = qi < s.Tq ? lse[stat_offset(s, b, h, qi)] : -INFINITY;
        Ds[tid] = qi < s.Tq ? D[stat_offset(s, b, h, qi)] : 0.0f;
        if (kPacked) Ss[tid] = key_begin(s, b, qi);
      }
      __syncthreads();
      float sc[kFlashPerLane], dp[kFlashPerLane];
      dot_rows(sc, Ks + c * ld, Qs + lane * ld, d);
      dot_rows(dp, Vs + c * ld, dOs + lane * ld, d);
      MINIVLM_UNROLL
      for (int t = 0; t < kFlashPerLane; ++t) {
        const int r = lane + t * kFlashLanes;
        const bool visible = kPacked ? key <= i0 + r && key >= Ss[r] : key < key_end(s, i0 + r);
        const float p = prob(sc[t], Ls[r], visible);
        Ps[c * pld + r] = p;
        dSs[c * pld + r] = p * (dp[t] - Ds[r]);
      }
      __syncwarp();  // key row c's 4 lanes (one warp) exchange P and dS
      for (int r = 0; r < kFlashTile; ++r) {
        const float p = Ps[c * pld + r], ds = dSs[c * pld + r];
        const float* orow = dOs + r * ld + lane;
        const float* qrow = Qs + r * ld + lane;
        MINIVLM_UNROLL
        for (int t = 0; t < kDims; ++t) {
          if (lane + t * kFlashLanes < d) {
            acc_v[t] += p * orow[t * kFlashLanes];
            acc_k[t] += ds * qrow[t * kFlashLanes];
          }
        }
      }
    }
  }
  if (key >= s.Tk) return;
  const std::size_t off = row_offset(b, s.Tk, s.Hkv, kh, key, d);
  MINIVLM_UNROLL
  for (int t = 0; t < kDims; ++t) {
    const int dd = lane + t * kFlashLanes;
    if (dd < d) {
      dk[off + dd] = from_float<T>(acc_k[t]);
      dv[off + dd] = from_float<T>(acc_v[t]);
    }
  }
}

template <typename T, int kMaxD, bool kPacked>
__global__ void __launch_bounds__(kFlashThreads)
    flash_dq_kernel(T* dq, const T* dout, const T* q, const T* k, const T* v, const float* lse,
                    const float* D, AttentionShape s, float scale) {
  constexpr int kDims = kMaxD / kFlashLanes;
  const int d = s.d, ld = d + 1, pld = kFlashTile + 1;
  float* Qs = dynamic_smem<float>();
  float* dOs = Qs + kFlashTile * ld;
  float* Ks = dOs + kFlashTile * ld;
  float* Vs = Ks + kFlashTile * ld;
  float* dSs = Vs + kFlashTile * ld;
  const int tid = static_cast<int>(threadIdx.x), row = tid / kFlashLanes, lane = tid % kFlashLanes;
  const int i0 = static_cast<int>(blockIdx.x) * kFlashTile, h = static_cast<int>(blockIdx.y);
  const int b = static_cast<int>(blockIdx.z), kh = h / (s.Hq / s.Hkv);
  const int qi = i0 + row, block_end = tile_key_end(s, i0);
  const int end = kPacked ? 0 : key_end(s, qi), begin = kPacked ? key_begin(s, b, qi) : 0;
  const int block_begin = kPacked ? tile_key_begin(s, b, i0) : 0;
  load_tile(Qs, q, b, s.Tq, s.Hq, h, i0, d, scale);
  load_tile(dOs, dout, b, s.Tq, s.Hq, h, i0, d, 1.0f);
  const float row_lse = qi < s.Tq ? lse[stat_offset(s, b, h, qi)] : -INFINITY;
  const float row_D = qi < s.Tq ? D[stat_offset(s, b, h, qi)] : 0.0f;
  float acc[kDims];
  MINIVLM_UNROLL
  for (int t = 0; t < kDims; ++t) acc[t] = 0.0f;
  for (int j0 = block_begin; j0 < block_end; j0 += kFlashTile) {
    __syncthreads();  // Q, dO are in place; the previous tile's K, V are no longer read
    load_tile(Ks, k, b, s.Tk, s.Hkv, kh, j0, d, 1.0f);
    load_tile(Vs, v, b, s.Tk, s.Hkv, kh, j0, d, 1.0f);
    __syncthreads();
    float sc[kFlashPerLane], dp[kFlashPerLane];
    dot_rows(sc, Qs + row * ld, Ks + lane * ld, d);
    dot_rows(dp, dOs + row * ld, Vs + lane * ld, d);
    MINIVLM_UNROLL
    for (int t = 0; t < kFlashPerLane; ++t) {
      const int col = lane + t * kFlashLanes;
      const int key = j0 + col;
      const float p = prob(sc[t], row_lse, kPacked ? key <= qi && key >= begin : key < end);
      dSs[row * pld + col] = p * (dp[t] - row_D);
    }
    __syncwarp();  // the row's 4 lanes (one warp) exchange dS
    for (int col = 0; col < kFlashTile; ++col) {
      const float ds = dSs[row * pld + col];
      const float* krow = Ks + col * ld + lane;
      MINIVLM_UNROLL
      for (int t = 0; t < kDims; ++t) {
        if (lane + t * kFlashLanes < d) acc[t] += ds * krow[t * kFlashLanes];
      }
    }
  }
  if (qi >= s.Tq) return;
  T* out = dq + row_offset(b, s.Tq, s.Hq, h, qi, d);
  MINIVLM_UNROLL
  for (int t = 0; t < kDims; ++t) {
    const int dd = lane + t * kFlashLanes;
    if (dd < d) out[dd] = from_float<T>(acc[t] * scale);
  }
}

// One chunk of kDecodeThreads keys of the cache for query row (b, h). With one chunk it writes out
// and lse; otherwise partial [(b·Hq + h)·chunks + chunk] = (m, l, acc[0 .. d)).
template <typename T>
__global__ void __launch_bounds__(kDecodeThreads)
    flash_decode_kernel(T* out, float* lse, float* partial, const T* q, const T* k, const T* v,
                        AttentionShape s, float scale) {
  __shared__ float qs[kFlashMaxHeadDim];
  __shared__ float ps[kDecodeThreads];
  const int tid = static_cast<int>(threadIdx.x), chunk = static_cast<int>(blockIdx.x);
  const int chunks = static_cast<int>(gridDim.x), h = static_cast<int>(blockIdx.y);
  const int b = static_cast<int>(blockIdx.z), kh = h / (s.Hq / s.Hkv), d = s.d;
  const std::size_t qoff = row_offset(b, 1, s.Hq, h, 0, d);
  for (int dd = tid; dd < d; dd += kDecodeThreads) qs[dd] = scale * to_float(q[qoff + dd]);
  __syncthreads();
  const int c0 = chunk * kDecodeThreads, key = c0 + tid;
  const int n = s.Tk - c0 < kDecodeThreads ? s.Tk - c0 : kDecodeThreads;
  float score = -INFINITY;
  if (key < s.Tk) {
    const T* krow = k + row_offset(b, s.Tk, s.Hkv, kh, key, d);
    score = 0.0f;
    for (int dd = 0; dd < d; ++dd) score += qs[dd] * to_float(krow[dd]);
  }
  const float m = block_reduce(score, MaxOp{}, -INFINITY);  // finite: the chunk has a key
  const float p = key < s.Tk ? expf(score - m) : 0.0f;
  ps[tid] = p;
  const float l = block_sum(p);  // its barriers also publish ps
  float* part = chunks == 1
                    ? nullptr
                    : partial + ((static_cast<std::size_t>(b) * s.Hq + h) * chunks + chunk) *
                                    static_cast<std::size_t>(d + 2);
  for (int dd = tid; dd < d; dd += kDecodeThreads) {
    float acc = 0.0f;
    for (int c = 0; c < n; ++c)
      acc += ps[c] * to_float(v[row_offset(b, s.Tk, s.Hkv, kh, c0 + c, d) + dd]);
    if (chunks == 1) {
      out[qoff + dd] = from_float<T>(acc / l);
    } else {
      part[2 + dd] = acc;
    }
  }
  if (tid != 0) return;
  if (chunks == 1) {
    lse[stat_offset(s, b, h, 0)] = m + logf(l);
  } else {
    part[0] = m;
    part[1] = l;
  }
}

// grid (Hq, B): out = Σ_c e^(m_c − M) acc_c / Σ_c e^(m_c − M) l_c, chunks in order.
template <typename T>
__global__ void __launch_bounds__(kDecodeThreads)
    flash_decode_combine_kernel(T* out, float* lse, const float* partial, int chunks,
                                AttentionShape s) {
  const int tid = static_cast<int>(threadIdx.x), h = static_cast<int>(blockIdx.x);
  const int b = static_cast<int>(blockIdx.y), d = s.d;
  const float* part = partial + (static_cast<std::size_t>(b) * s.Hq + h) * chunks * (d + 2);
  float M = -INFINITY;
  for (int c = 0; c < chunks; ++c) M = fmaxf(M, part[c * (d + 2)]);
  float L = 0.0f;
  for (int c = 0; c < chunks; ++c) L += expf(part[c * (d + 2)] - M) * part[c * (d + 2) + 1];
  const std::size_t qoff = row_offset(b, 1, s.Hq, h, 0, d);
  for (int dd = tid; dd < d; dd += kDecodeThreads) {
    float acc = 0.0f;
    for (int c = 0; c < chunks; ++c)
      acc += expf(part[c * (d + 2)] - M) * part[c * (d + 2) + 2 + dd];
    out[qoff + dd] = from_float<T>(acc / L);
  }
  if (tid == 0) lse[stat_offset(s, b, h, 0)] = M + logf(L);
}

inline void require_attention(const char* name, const AttentionShape& s) {
  require(s.B >= 0 && s.Tq >= 0 && s.Tk >= 0 && s.Hkv >= 1 && s.Hq >= s.Hkv && s.Hq % s.Hkv == 0,
          name,
          "needs B, Tq, Tk >= 0 and Hq a positive multiple of Hkv, got B = " + std::to_string(s.B) +
              ", Tq = " + std::to_string(s.Tq) + ", Tk = " + std::to_string(s.Tk) +
              ", Hq = " + std::to_string(s.Hq) + ", Hkv = " + std::to_string(s.Hkv));
  require(s.seq_start == nullptr || (s.causal && s.Tq == s.Tk), name,
          "seq_start (packed rows) needs causal attention with Tq == Tk, got Tq = " +
              std::to_string(s.Tq) + ", Tk = " + std::to_string(s.Tk));
  require(s.d >= 8 && s.d <= kFlashMaxHeadDim && s.d % 8 == 0, name,
          "head dim " + std::to_string(s.d) + " is not a multiple of 8 in [8, " +
              std::to_string(kFlashMaxHeadDim) + "]");
}

// Calls f(std::integral_constant<int, capacity>) for the register capacity that holds d.
template <typename F>
void with_head_dim_capacity(int d, F&& f) {
  if (d <= 32) {
    f(std::integral_constant<int, 32>{});
  } else if (d <= 64) {
    f(std::integral_constant<int, 64>{});
  } else if (d <= 96) {
    f(std::integral_constant<int, 96>{});
  } else {
    f(std::integral_constant<int, 128>{});
  }
}

inline float attention_scale(int d) { return 1.0f / std::sqrt(static_cast<float>(d)); }

inline std::size_t tile_floats(int d) { return static_cast<std::size_t>(kFlashTile) * (d + 1); }
inline constexpr std::size_t kScoreTileFloats = kFlashTile * (kFlashTile + 1);

inline dim3 query_tiles(const AttentionShape& s) {
  return dim3(static_cast<unsigned>(ceil_div(s.Tq, kFlashTile)), s.Hq, s.B);
}

// 8 consecutive bf16 of global memory as 4 pairs (the tensor-core kernels' operand loads), and
// back; one 16-byte access when `vec` (p 16-byte aligned).
__device__ __forceinline__ void load_bf16x8(std::uint32_t (&w)[4], const bf16* p, bool vec) {
#ifdef __CUDACC__
  if (vec) {
    const uint4 x = *reinterpret_cast<const uint4*>(p);
    w[0] = x.x;
    w[1] = x.y;
    w[2] = x.z;
    w[3] = x.w;
    return;
  }
#else
  (void)vec;
#endif
  MINIVLM_UNROLL
  for (int e = 0; e < 4; ++e) w[e] = pack_bf16x2(p[2 * e], p[2 * e + 1]);
}
__device__ __forceinline__ void store_bf16x8(bf16* p, const std::uint32_t (&w)[4], bool vec) {
#ifdef __CUDACC__
  if (vec) {
    *reinterpret_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
    return;
  }
#else
  (void)vec;
#endif
  MINIVLM_UNROLL
  for (int e = 0; e < 8; ++e) {
    p[e] = __ushort_as_bfloat16(static_cast<unsigned short>(w[e / 2] >> (16 * (e % 2))));
  }
}

}  // namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND

// bf16 storage: the tensor-core forward and decode (namespace tc_forward) and backward
// (tc_backward); they use the helpers above.
#include "kernels/flash_attention_tc_forward.cuh"
#include "kernels/flash_attention_tc_backward.cuh"

namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND {

template <typename T>
void flash_attention_forward(T* out, float* lse, const T* q, const T* k, const T* v,
                             const AttentionShape& s, cudaStream_t stream) {
  require_attention("flash_attention_forward", s);
  if (s.B == 0 || s.Tq == 0) return;
  if constexpr (std::is_same_v<T, bf16>) {
    tc_forward::flash_forward_tc(out, lse, q, k, v, s, stream);
  } else {
    with_head_dim_capacity(s.d, [&](auto cap) {
      const auto kernel = s.seq_start != nullptr
                              ? flash_forward_kernel<T, decltype(cap)::value, true>
                              : flash_forward_kernel<T, decltype(cap)::value, false>;
      const std::size_t smem = (3 * tile_floats(s.d) + kScoreTileFloats) * sizeof(float);
      allow_dynamic_smem(kernel, smem);
      simt::launch(kernel, query_tiles(s), kFlashThreads, smem, stream, out, lse, q, k, v, s,
                   attention_scale(s.d));
    });
  }
}

template <typename T>
void flash_attention_backward(T* dq, T* dk, T* dv, float* scratch, const T* dout, const T* q,
                              const T* k, const T* v, const T* out, const float* lse,
                              const AttentionShape& s, cudaStream_t stream) {
  require_attention("flash_attention_backward", s);
  if (s.B == 0) return;
  if constexpr (std::is_same_v<T, bf16>) {
    tc_backward::flash_attention_backward_tc(dq, dk, dv, scratch, dout, q, k, v, out, lse, s,
                                             stream);
  } else {
    const float scale = attention_scale(s.d);
    with_head_dim_capacity(s.d, [&](auto cap) {
      constexpr int kMaxD = decltype(cap)::value;
      if (s.Tq > 0) {
        simt::launch(flash_rowdot_kernel<T>, query_tiles(s), kFlashThreads, 0, stream, scratch,
                     dout, out, s);
        const auto dq_kernel = s.seq_start != nullptr ? flash_dq_kernel<T, kMaxD, true>
                                                      : flash_dq_kernel<T, kMaxD, false>;
        const std::size_t smem = (4 * tile_floats(s.d) + kScoreTileFloats) * sizeof(float);
        allow_dynamic_smem(dq_kernel, smem);
        simt::launch(dq_kernel, query_tiles(s), kFlashThreads, smem, stream, dq, dout, q, k, v, lse,
                     static_cast<const float*>(scratch), s, scale);
      }
      if (s.Tk > 0) {
        const auto kv_kernel = s.seq_start != nullptr ? flash_dkdv_kernel<T, kMaxD, true>
                                                      : flash_dkdv_kernel<T, kMaxD, false>;
        const std::size_t smem =
            (4 * tile_floats(s.d) + 2 * kScoreTileFloats + 3 * kFlashTile) * sizeof(float);
        allow_dynamic_smem(kv_kernel, smem);
        const dim3 grid(static_cast<unsigned>(ceil_div(s.Tk, kFlashTile)), s.Hkv, s.B);
        simt::launch(kv_kernel, grid, kFlashThreads, smem, stream, dk, dv, dout, q, k, v, lse,
                     static_cast<const float*>(scratch), s, scale);
      }
    });
  }
}

template <typename T>
void flash_attention_decode(T* out, float* lse, float* scratch, const T* q, const T* k, const T* v,
                            const AttentionShape& s, cudaStream_t stream) {
  require_attention("flash_attention_decode", s);
  require(s.Tq == 1, "flash_attention_decode",
          "needs one query row, got Tq = " + std::to_string(s.Tq));
  if (s.B == 0) return;
  if (s.Tk == 0) {  // no key: out 0, lse −inf, as the tiled kernel writes them
    flash_attention_forward(out, lse, q, k, v, s, stream);
    return;
  }
  const int chunks = static_cast<int>(ceil_div(s.Tk, kDecodeThreads));
  if constexpr (std::is_same_v<T, bf16>) {
    tc_forward::flash_decode_tc(out, lse, scratch, q, k, v, s, stream);
  } else {
    simt::launch(flash_decode_kernel<T>, dim3(chunks, s.Hq, s.B), kDecodeThreads, 0, stream, out,
                 lse, scratch, q, k, v, s, attention_scale(s.d));
  }
  if (chunks > 1) {
    simt::launch(flash_decode_combine_kernel<T>, dim3(s.Hq, s.B), kDecodeThreads, 0, stream, out,
                 lse, static_cast<const float*>(scratch), chunks, s);
  }
}

MINIVLM_INSTANTIATE_STORAGE_TYPES(flash_attention_forward)
MINIVLM_INSTANTIATE_STORAGE_TYPES(flash_attention_backward)
MINIVLM_INSTANTIATE_STORAGE_TYPES(flash_attention_decode)

}  // namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND
