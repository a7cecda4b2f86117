// Tensor-core FlashAttention-2 forward and decode for bf16 storage (fp32 accumulation), through
// the warp's simt::mma_m16n8k16_bf16 (PTX mma.sync m16n8k16, fragment layout in
// kernels/simt/collectives.h). Same contract as the SIMT kernels of kernels/flash_attention.cuh
// (shapes, causal alignment, GQA, packed rows via seq_start, lse, empty rows), which include this
// file after their helpers (key_begin, key_end, row_offset, stat_offset, row_max, row_sum) and
// call it from their launchers when T = bf16; the fp32 storage path stays SIMT.
//
// Fragments (g = lane / 4, t = lane % 4): an A register holds the pair (row g or g + 8, two
// consecutive k), a B register the pair (two consecutive k, column g), a C register the element
// (row g or g + 8, column 2t or 2t + 1). Shared-memory tiles are bf16 with rows padded by 8 (16
// bytes): a row stride of ≡ 4 (mod 8) words puts the 8 rows × 4 words of a fragment load in 32
// different banks. V is stored transposed, [dim][key], so that a B pair of P·V (two consecutive
// keys of one dim) is one 32-bit word; the transpose happens when the tile is loaded (each lane
// packs two keys' rows of 8 dims into 8 words). A head dim d that is not a multiple of 16 (8, 24,
// 40, 72, ...) is zero-padded to dp = ⌈d/16⌉·16 for the k16 steps of QKᵀ; P·V's n8 tiles cover d
// exactly. Global loads and the output's stores move 16 bytes per lane when the tensors are
// 16-byte aligned (rows are: d is a multiple of 8), else one bf16 at a time.
//
//   forward  grid (⌈Tq/64⌉, Hq, B), 128 threads = 4 warps, Br = 64 query rows (16 per warp),
//            Bc = 64 keys per tile. Each warp keeps its Q rows as A fragments in registers
//            (⌈d/16⌉·4 words, loaded once through shared memory); per key tile K_j [64][dp + 8]
//            and V_jᵀ [d][72] are in shared memory; S = Q K_jᵀ is 8 n8 tiles of accumulators
//            (32 fp32 per lane), scaled by scale·log2 e, masked (causal, Tk, packed rows: only
//            on tiles that cross a bound), online softmax with exp2 (row max / sum over the 4
//            lanes of a row group: xor shuffles 1 and 2), O (d/8 n8 tiles, 4 fp32 each) rescaled
//            in registers, then P rounded to bf16 becomes P·V's A operand in registers directly
//            (the accumulators of S tiles 2j, 2j + 1 are the A fragment of k16 step j), O +=
//            P V_j. l sums the fp32 P, as FlashAttention-2 does. Key tiles past the block's last
//            visible key and before its first sample are not loaded; a warp whose 16 rows see no
//            key of a loaded tile skips its products (the same bits: such a tile would add 0 and
//            rescale by 1). O / l goes out through shared memory (16-byte stores), lse =
//            m·ln 2 + ln l in fp32 (−inf and a zero row for a row that sees no key). Shared:
//            2·(64·(dp + 8) + 72·d) B (Q, then K_j and O, share the first buffer): d = 64:
//            18 KiB, d = 72: 21.1 KiB, d = 128: 35 KiB.
//   decode   Tq = 1 against a cache of L keys, GQA: the g = Hq/Hkv query heads of a kv head are
//            the M rows of the mma (padded to 16; groups above 16 loop over row blocks, each
//            reloading the chunk). Grid (⌈L/128⌉, Hkv, B), 128 threads; warp w takes keys
//            [32w, 32w + 32) of the block's chunk into its own shared K [32][dp + 8] and Vᵀ
//            [d][40] (__syncwarp only), computes S (4 n8 tiles), its softmax and P·V like the
//            forward, then the 4 warps' (m, l, O) meet in shared memory (over the K, V buffers)
//            and are merged in warp order. One chunk writes out and lse, more write (m, l,
//            acc[d]) partials to scratch in flash_decode_scratch_floats's layout for the SIMT
//            combine kernel. Shared: 2·4·(32·(dp + 8) + 40·d) B: d = 64: 38 KiB, d = 128:
//            74 KiB (opted in above 48 KiB).
//
// Registers per thread (ptxas, no spills; kMaxD = 32 / 64 / 96 / 128, the capacity that holds
// d): forward sm_90 113 / 143 / 167 / 184 (packed 106 / 128 / 168 / 196), sm_80 120 / 142 / 166
// / 179 (packed 120 / 139 / 168 / 190); decode sm_90 54 / 64 / 88 / 96, sm_80 48 / 64 / 91 /
// 120. Mostly the O accumulators (d/2 per lane), S (32), Q's fragments (d/4) and B fragments
// loaded ahead of their mma (scripts/check_kernel_resources.sh prints the table).
//
// Cost at the H100 SXM's 989 TFLOP/s dense bf16 tensor peak (3.35 TB/s HBM). S = visible scores
// (B·Hq·Tq·Tk, ≈ half causal; diagonal tiles are computed whole).
//   forward  4·d·S tensor FLOPs + ~8·S SIMT (scale, mask, max, exp2, sum, convert: the fp32
//            FMA/MUFU pipes, 67 TFLOP/s and 16 exp2/clock/SM, limit FlashAttention-2 at small d).
//            DRAM as the SIMT kernel: 2·2·B·d·(Hq·Tq + Hkv·Tk) + 4·B·Hq·Tq; K, V re-read per query
//            tile and per query head of the group from L2.
//            Minimind2-small (Hq = 8, d = 64, Hkv = 2), B = 4, T = 512, causal: 1.07 GFLOP →
//            1.1 µs at the tensor peak; the ~4.7 M exp2 (whole diagonal tiles) take ~1.2 µs at
//            16/clock on 132 SMs; the grid is 8·8·4 = 256 blocks of 1 to 8 key tiles, so launch
//            and the longest block's 8 sequential tiles dominate: expect a few µs, against ~65 µs
//            for the SIMT kernel. Long rows (T = 4096, d = 128, Hq = 16, B = 1, causal): 69 GFLOP
//            → 70 µs at the peak; this kernel has no load/compute overlap (no cp.async, one
//            buffer) and loads B fragments with 32-bit shared loads (no ldmatrix), so expect a
//            fraction of it (FlashAttention-2 reaches 50-70% of an A100's peak, ~35% of an
//            H100's).
//   decode   4·d·B·Hq·L FLOPs (negligible); DRAM 2·2·B·Hkv·L·d (each K, V byte read once per
//            kv head, the group's query heads share it) + 2·4·B·Hq·⌈L/128⌉·(d + 2) through
//            scratch when split. Memory-bound: L = 4096, Hkv = 2, d = 64, B = 1: 2.1 MB → 0.6 µs.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND::tc_forward {

inline constexpr int kTcRows = 64;  // Br: query rows per forward block
inline constexpr int kTcKeys = 64;  // Bc: keys per forward tile
inline constexpr int kTcWarps = 4;  // warps per block (forward and decode)
inline constexpr int kTcThreads = 32 * kTcWarps;
inline constexpr int kTcPad = 8;  // bf16 of padding per shared row
inline constexpr int kTcDecodeWarpKeys = kFlashDecodeChunk / kTcWarps;  // keys per decode warp
inline constexpr float kLog2e = 1.4426950408889634f;
inline constexpr float kLn2 = 0.6931471805599453f;
static_assert(kTcRows == 16 * kTcWarps && kTcKeys % 16 == 0 && kTcDecodeWarpKeys % 16 == 0);

__device__ __forceinline__ int round_up16(int d) { return (d + 15) / 16 * 16; }

// 32- and 128-bit shared-memory accesses of bf16 pairs / octets (plain loads and stores under
// nvcc; memcpy in the emulator, where the buffer is bytes).
__device__ __forceinline__ std::uint32_t lds32(const bf16* p) {
#ifdef __CUDACC__
  return *reinterpret_cast<const std::uint32_t*>(p);
#else
  std::uint32_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
#endif
}
__device__ __forceinline__ void sts32(bf16* p, std::uint32_t w) {
#ifdef __CUDACC__
  *reinterpret_cast<std::uint32_t*>(p) = w;
#else
  std::memcpy(static_cast<void*>(p), &w, sizeof w);
#endif
}
__device__ __forceinline__ void sts128(bf16* p, const std::uint32_t (&w)[4]) {
#ifdef __CUDACC__
  *reinterpret_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
#else
  std::memcpy(static_cast<void*>(p), w, sizeof w);
#endif
}
__device__ __forceinline__ void lds128(std::uint32_t (&w)[4], const bf16* p) {
#ifdef __CUDACC__
  const uint4 x = *reinterpret_cast<const uint4*>(p);
  w[0] = x.x;
  w[1] = x.y;
  w[2] = x.z;
  w[3] = x.w;
#else
  std::memcpy(w, p, sizeof w);
#endif
}

// dst[r·ld + c] = src[row0 + r][c] of head `head` for r < rows, c < dp = ⌈d/16⌉·16; zero for
// rows at or past len and dims at or past d. Thread `tid` of `threads` takes 16-byte chunks, a
// row's chunks on consecutive threads (coalesced).
__device__ __forceinline__ void tc_load_rows(bf16* dst, int ld, const bf16* src, int b, int len,
                                             int heads, int head, int row0, int rows, int d,
                                             bool vec, int tid, int threads) {
  const int chunks = round_up16(d) / 8;
  for (int idx = tid; idx < rows * chunks; idx += threads) {
    const int r = idx / chunks, c = idx % chunks, row = row0 + r;
    std::uint32_t w[4] = {0, 0, 0, 0};
    if (row < len && 8 * c < d)
      load_bf16x8(w, src + row_offset(b, len, heads, head, row, d) + 8 * c, vec);
    sts128(dst + r * ld + 8 * c, w);
  }
}

// dst[c·ld + 2p + {0, 1}] = src[row0 + 2p + {0, 1}][c] for p < pairs, c < d (V transposed: a
// P·V B-fragment pair is one word); zero for rows at or past len. Consecutive threads take
// consecutive key pairs of the same 8 dims, so their word stores hit consecutive banks.
__device__ __forceinline__ void tc_load_transposed(bf16* dst, int ld, const bf16* src, int b,
                                                   int len, int heads, int head, int row0,
                                                   int pairs, int d, bool vec, int tid,
                                                   int threads) {
  const int chunks = d / 8;
  for (int idx = tid; idx < pairs * chunks; idx += threads) {
    const int p = idx % pairs, c = idx / pairs, row = row0 + 2 * p;
    std::uint32_t lo[4] = {0, 0, 0, 0}, hi[4] = {0, 0, 0, 0};
    if (row < len) load_bf16x8(lo, src + row_offset(b, len, heads, head, row, d) + 8 * c, vec);
    if (row + 1 < len)
      load_bf16x8(hi, src + row_offset(b, len, heads, head, row + 1, d) + 8 * c, vec);
    MINIVLM_UNROLL
    for (int e = 0; e < 8; ++e) {
      const int sh = 16 * (e % 2);
      const std::uint32_t x = (lo[e / 2] >> sh) & 0xffffu, y = (hi[e / 2] >> sh) & 0xffffu;
      sts32(dst + (8 * c + e) * ld + 2 * p, x | (y << 16));
    }
  }
}

// S (16 × 8·kTiles, the warp's rows against keys [key0, key0 + 8·kTiles) of K, row stride ld)
// = A · Kᵀ over the k16 steps of the head dim that d reaches.
template <int kSteps, int kTiles>
__device__ __forceinline__ void tc_scores(float (&sc)[kTiles][4],
                                          const std::uint32_t (&qa)[kSteps][4], const bf16* Ks,
                                          int ld, int d, int g, int t) {
  MINIVLM_UNROLL
  for (int n = 0; n < kTiles; ++n) {
    MINIVLM_UNROLL
    for (int i = 0; i < 4; ++i) sc[n][i] = 0.0f;
  }
  MINIVLM_UNROLL
  for (int kk = 0; kk < kSteps; ++kk) {
    if (16 * kk >= d) continue;
    MINIVLM_UNROLL
    for (int n = 0; n < kTiles; ++n) {
      const bf16* kb = Ks + (8 * n + g) * ld + 16 * kk + 2 * t;
      const std::uint32_t bb[2] = {lds32(kb), lds32(kb + 8)};
      simt::mma_m16n8k16_bf16(sc[n], qa[kk], bb, sc[n]);
    }
  }
}

// O += P · V for the scores (already exponentiated) of kTiles n8 key tiles: P rounded to bf16 as
// the A fragments (tiles 2j, 2j + 1 are k16 step j), V transposed in Vts (row stride ld).
template <int kTiles, int kDimTiles>
__device__ __forceinline__ void tc_pv(float (&acc)[kDimTiles][4], const float (&p)[kTiles][4],
                                      const bf16* Vts, int ld, int d, int g, int t) {
  MINIVLM_UNROLL
  for (int j = 0; j < kTiles / 2; ++j) {
    const std::uint32_t pa[4] = {pack_bf16x2(p[2 * j][0], p[2 * j][1]),
                                 pack_bf16x2(p[2 * j][2], p[2 * j][3]),
                                 pack_bf16x2(p[2 * j + 1][0], p[2 * j + 1][1]),
                                 pack_bf16x2(p[2 * j + 1][2], p[2 * j + 1][3])};
    MINIVLM_UNROLL
    for (int n = 0; n < kDimTiles; ++n) {
      if (8 * n >= d) continue;
      const bf16* vb = Vts + (8 * n + g) * ld + 16 * j + 2 * t;
      const std::uint32_t bb[2] = {lds32(vb), lds32(vb + 8)};
      simt::mma_m16n8k16_bf16(acc[n], pa, bb, acc[n]);
    }
  }
}

// One online-softmax step over scores sc (log2 units, masked to −inf) of the lane's two rows
// (x = 0: row g, elements 0, 1; x = 1: row g + 8, elements 2, 3): m, l updated, sc replaced by
// P = exp2(s − m), returns the rescale factors of O in alpha.
template <int kTiles>
__device__ __forceinline__ void tc_softmax(float (&sc)[kTiles][4], float (&m)[2], float (&l)[2],
                                           float (&alpha)[2]) {
  float mx[2] = {-INFINITY, -INFINITY};
  MINIVLM_UNROLL
  for (int n = 0; n < kTiles; ++n) {
    MINIVLM_UNROLL
    for (int i = 0; i < 4; ++i) mx[i / 2] = fmaxf(mx[i / 2], sc[n][i]);
  }
  float base[2];
  MINIVLM_UNROLL
  for (int x = 0; x < 2; ++x) {
    const float m_new = fmaxf(m[x], row_max(mx[x]));
    base[x] = m_new == -INFINITY ? 0.0f : m_new;
    alpha[x] = exp2f(m[x] - base[x]);
    m[x] = m_new;
  }
  float sum[2] = {0.0f, 0.0f};
  MINIVLM_UNROLL
  for (int n = 0; n < kTiles; ++n) {
    MINIVLM_UNROLL
    for (int i = 0; i < 4; ++i) {
      sc[n][i] = exp2f(sc[n][i] - base[i / 2]);
      sum[i / 2] += sc[n][i];
    }
  }
  MINIVLM_UNROLL
  for (int x = 0; x < 2; ++x) l[x] = alpha[x] * l[x] + row_sum(sum[x]);
}

template <int kMaxD, bool kPacked>
__global__ void __launch_bounds__(kTcThreads)
    flash_forward_tc_kernel(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                            AttentionShape s, float scale_log2, bool vec) {
  constexpr int kSteps = kMaxD / 16, kDimTiles = kMaxD / 8, kTiles = kTcKeys / 8;
  constexpr int vld = kTcKeys + kTcPad;
  const int d = s.d, ld = round_up16(d) + kTcPad;
  bf16* QKs = dynamic_smem<bf16>();  // Q, then K_j, then O
  bf16* Vts = QKs + kTcRows * ld;
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  const int i0 = static_cast<int>(blockIdx.x) * kTcRows, h = static_cast<int>(blockIdx.y);
  const int b = static_cast<int>(blockIdx.z), kh = h / (s.Hq / s.Hkv);
  const int last = (i0 + kTcRows < s.Tq ? i0 + kTcRows : s.Tq) - 1;
  const int block_end = key_end(s, last);
  const int block_begin = kPacked ? key_begin(s, b, i0) / kTcKeys * kTcKeys : 0;
  // The warp's rows [w0, w0 + 16): keys [warp_begin, warp_end) hold every key one of them sees;
  // a tile inside [hi_begin, lo_end) is visible to all of them (no mask).
  const int w0 = i0 + 16 * warp, w_last = w0 + 15 < s.Tq ? w0 + 15 : s.Tq - 1;
  const int warp_end = w0 < s.Tq ? key_end(s, w_last) : 0, lo_end = key_end(s, w0);
  const int warp_begin = kPacked ? key_begin(s, b, w0) : 0;
  const int hi_begin = kPacked ? key_begin(s, b, w_last) : 0;
  const int rows[2] = {w0 + g, w0 + g + 8};
  int end[2], begin[2];
  MINIVLM_UNROLL
  for (int x = 0; x < 2; ++x) {
    end[x] = key_end(s, rows[x]);
    begin[x] = kPacked ? key_begin(s, b, rows[x]) : 0;
  }

  tc_load_rows(QKs, ld, q, b, s.Tq, s.Hq, h, i0, kTcRows, d, vec, tid, kTcThreads);
  __syncthreads();
  std::uint32_t qa[kSteps][4];
  MINIVLM_UNROLL
  for (int kk = 0; kk < kSteps; ++kk) {
    const bf16* qb = QKs + (16 * warp + g) * ld + 16 * kk + 2 * t;
    const bool in = 16 * kk < d;
    qa[kk][0] = in ? lds32(qb) : 0u;
    qa[kk][1] = in ? lds32(qb + 8 * ld) : 0u;
    qa[kk][2] = in ? lds32(qb + 8) : 0u;
    qa[kk][3] = in ? lds32(qb + 8 * ld + 8) : 0u;
  }

  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f}, acc[kDimTiles][4];
  MINIVLM_UNROLL
  for (int n = 0; n < kDimTiles; ++n) {
    MINIVLM_UNROLL
    for (int i = 0; i < 4; ++i) acc[n][i] = 0.0f;
  }
  for (int j0 = block_begin; j0 < block_end; j0 += kTcKeys) {
    __syncthreads();  // Q's fragments are read; the previous tile's K, Vᵀ are no longer read
    tc_load_rows(QKs, ld, k, b, s.Tk, s.Hkv, kh, j0, kTcKeys, d, vec, tid, kTcThreads);
    tc_load_transposed(Vts, vld, v, b, s.Tk, s.Hkv, kh, j0, kTcKeys / 2, d, vec, tid, kTcThreads);
    __syncthreads();
    if (j0 >= warp_end || j0 + kTcKeys <= warp_begin) continue;  // no row of the warp sees it
    float sc[kTiles][4];
    tc_scores(sc, qa, QKs, ld, d, g, t);
    const bool masked = j0 + kTcKeys > lo_end || j0 < hi_begin;
    MINIVLM_UNROLL
    for (int n = 0; n < kTiles; ++n) {
      MINIVLM_UNROLL
      for (int i = 0; i < 4; ++i) {
        const int key = j0 + 8 * n + 2 * t + i % 2, x = i / 2;
        const bool hidden = masked && (key >= end[x] || key < begin[x]);
        sc[n][i] = hidden ? -INFINITY : sc[n][i] * scale_log2;
      }
    }
    float alpha[2];
    tc_softmax(sc, m, l, alpha);
    MINIVLM_UNROLL
    for (int n = 0; n < kDimTiles; ++n) {
      MINIVLM_UNROLL
      for (int i = 0; i < 4; ++i) acc[n][i] *= alpha[i / 2];
    }
    tc_pv(acc, sc, Vts, vld, d, g, t);
  }

  __syncthreads();  // every warp is done with K_j: the buffer takes O
  const float inv[2] = {l[0] > 0.0f ? 1.0f / l[0] : 0.0f, l[1] > 0.0f ? 1.0f / l[1] : 0.0f};
  MINIVLM_UNROLL
  for (int n = 0; n < kDimTiles; ++n) {
    if (8 * n >= d) break;
    MINIVLM_UNROLL
    for (int x = 0; x < 2; ++x) {
      sts32(QKs + (16 * warp + g + 8 * x) * ld + 8 * n + 2 * t,
            pack_bf16x2(acc[n][2 * x] * inv[x], acc[n][2 * x + 1] * inv[x]));
    }
  }
  if (t == 0) {
    MINIVLM_UNROLL
    for (int x = 0; x < 2; ++x) {
      if (rows[x] < s.Tq) {
        lse[stat_offset(s, b, h, rows[x])] = l[x] > 0.0f ? m[x] * kLn2 + logf(l[x]) : -INFINITY;
      }
    }
  }
  __syncwarp();  // the warp writes out its own 16 rows
  const int chunks = d / 8;
  for (int idx = lane; idx < 16 * chunks; idx += 32) {
    const int r = idx / chunks, c = idx % chunks;
    if (w0 + r >= s.Tq) break;
    std::uint32_t w[4];
    lds128(w, QKs + (16 * warp + r) * ld + 8 * c);
    store_bf16x8(out + row_offset(b, s.Tq, s.Hq, h, w0 + r, d) + 8 * c, w, vec);
  }
}

// Decode: block (chunk, kv head, b), warp w the chunk's keys [32w, 32w + 32) against the group's
// query heads stacked as rows. Writes out and lse (one chunk) or partials (m, l, acc[d]) at
// [(b·Hq + h)·chunks + chunk]·(d + 2) for flash_decode_combine_kernel.
template <int kMaxD>
__global__ void __launch_bounds__(kTcThreads)
    flash_decode_tc_kernel(bf16* out, float* lse, float* partial, const bf16* q, const bf16* k,
                           const bf16* v, AttentionShape s, float scale_log2, bool vec) {
  constexpr int kSteps = kMaxD / 16, kDimTiles = kMaxD / 8, kTiles = kTcDecodeWarpKeys / 8;
  constexpr int vld = kTcDecodeWarpKeys + kTcPad;
  const int d = s.d, ld = round_up16(d) + kTcPad, rld = d + 2;
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  const int chunk = static_cast<int>(blockIdx.x), chunks = static_cast<int>(gridDim.x);
  const int kh = static_cast<int>(blockIdx.y), b = static_cast<int>(blockIdx.z);
  const int group = s.Hq / s.Hkv;
  bf16* Ks = dynamic_smem<bf16>() + warp * (kTcDecodeWarpKeys * ld + d * vld);
  bf16* Vts = Ks + kTcDecodeWarpKeys * ld;
  float* red = dynamic_smem<float>();  // [warp][16][d + 2] over the K, Vᵀ buffers
  const int key0 = chunk * kFlashDecodeChunk + warp * kTcDecodeWarpKeys;
  for (int r0 = 0; r0 < group; r0 += 16) {
    if (r0 > 0) __syncthreads();  // the previous row block's merge no longer reads `red`
    tc_load_rows(Ks, ld, k, b, s.Tk, s.Hkv, kh, key0, kTcDecodeWarpKeys, d, vec, lane, 32);
    tc_load_transposed(Vts, vld, v, b, s.Tk, s.Hkv, kh, key0, kTcDecodeWarpKeys / 2, d, vec, lane,
                       32);
    __syncwarp();
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f}, acc[kDimTiles][4];
    MINIVLM_UNROLL
    for (int n = 0; n < kDimTiles; ++n) {
      MINIVLM_UNROLL
      for (int i = 0; i < 4; ++i) acc[n][i] = 0.0f;
    }
    if (key0 < s.Tk) {  // the warp has keys
      // Rows r0 + g and r0 + g + 8 of the group: query heads kh·group + row, zero past the group.
      std::uint32_t qa[kSteps][4];
      MINIVLM_UNROLL
      for (int kk = 0; kk < kSteps; ++kk) {
        MINIVLM_UNROLL
        for (int i = 0; i < 4; ++i) {
          const int row = r0 + g + 8 * (i % 2), dim = 16 * kk + 2 * t + 8 * (i / 2);
          qa[kk][i] = 0u;
          if (row < group && dim < d) {
            const bf16* qp = q + row_offset(b, 1, s.Hq, kh * group + row, 0, d) + dim;
            qa[kk][i] = pack_bf16x2(qp[0], qp[1]);
          }
        }
      }
      float sc[kTiles][4];
      tc_scores(sc, qa, Ks, ld, d, g, t);
      const bool masked = key0 + kTcDecodeWarpKeys > s.Tk;
      MINIVLM_UNROLL
      for (int n = 0; n < kTiles; ++n) {
        MINIVLM_UNROLL
        for (int i = 0; i < 4; ++i) {
          const int key = key0 + 8 * n + 2 * t + i % 2;
          sc[n][i] = masked && key >= s.Tk ? -INFINITY : sc[n][i] * scale_log2;
        }
      }
      float alpha[2];
      tc_softmax(sc, m, l, alpha);  // alpha = 0: nothing to rescale
      tc_pv(acc, sc, Vts, vld, d, g, t);
    }
    __syncthreads();  // every warp is done with its K, Vᵀ: `red` takes the partials
    float* mine = red + warp * 16 * rld;
    MINIVLM_UNROLL
    for (int x = 0; x < 2; ++x) {
      float* rrow = mine + (g + 8 * x) * rld;
      if (t == 0) {
        rrow[0] = m[x];
        rrow[1] = l[x];
      }
      MINIVLM_UNROLL
      for (int n = 0; n < kDimTiles; ++n) {
        if (8 * n >= d) break;
        rrow[2 + 8 * n + 2 * t] = acc[n][2 * x];
        rrow[3 + 8 * n + 2 * t] = acc[n][2 * x + 1];
      }
    }
    __syncthreads();
    // Merge the 4 warps in order (warp 0 holds the chunk's first key: M is finite).
    const int rows = group - r0 < 16 ? group - r0 : 16;
    for (int idx = tid; idx < rows * d; idx += kTcThreads) {
      const int r = idx / d, dd = idx % d, h = kh * group + r0 + r;
      float M = -INFINITY;
      MINIVLM_UNROLL
      for (int w = 0; w < kTcWarps; ++w) M = fmaxf(M, red[(w * 16 + r) * rld]);
      float L = 0.0f, A = 0.0f;
      MINIVLM_UNROLL
      for (int w = 0; w < kTcWarps; ++w) {
        const float* rrow = red + (w * 16 + r) * rld;
        const float f = exp2f(rrow[0] - M);
        L += f * rrow[1];
        A += f * rrow[2 + dd];
      }
      if (chunks == 1) {
        out[row_offset(b, 1, s.Hq, h, 0, d) + dd] = from_float<bf16>(A / L);
        if (dd == 0) lse[stat_offset(s, b, h, 0)] = M * kLn2 + logf(L);
      } else {
        float* part = partial + ((static_cast<std::size_t>(b) * s.Hq + h) * chunks + chunk) *
                                    static_cast<std::size_t>(rld);
        part[2 + dd] = A;
        if (dd == 0) {
          part[0] = M * kLn2;  // the combine works in natural-log units
          part[1] = L;
        }
      }
    }
  }
}

inline bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

inline void flash_forward_tc(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                             const AttentionShape& s, cudaStream_t stream) {
  const bool vec = aligned16(out) && aligned16(q) && aligned16(k) && aligned16(v);
  const int ld = (s.d + 15) / 16 * 16 + kTcPad;
  const std::size_t smem = (static_cast<std::size_t>(kTcRows) * ld +
                            static_cast<std::size_t>(s.d) * (kTcKeys + kTcPad)) *
                           sizeof(bf16);
  const float scale_log2 = attention_scale(s.d) * kLog2e;
  const dim3 grid(static_cast<unsigned>(ceil_div(s.Tq, kTcRows)), s.Hq, s.B);
  with_head_dim_capacity(s.d, [&](auto cap) {
    const auto kernel = s.seq_start != nullptr
                            ? flash_forward_tc_kernel<decltype(cap)::value, true>
                            : flash_forward_tc_kernel<decltype(cap)::value, false>;
    allow_dynamic_smem(kernel, smem);
    simt::launch(kernel, grid, kTcThreads, smem, stream, out, lse, q, k, v, s, scale_log2, vec);
  });
}

// s.Tk > 0; more than one chunk of kFlashDecodeChunk keys leaves partials for the combine.
inline void flash_decode_tc(bf16* out, float* lse, float* scratch, const bf16* q, const bf16* k,
                            const bf16* v, const AttentionShape& s, cudaStream_t stream) {
  const bool vec = aligned16(k) && aligned16(v);
  const int ld = (s.d + 15) / 16 * 16 + kTcPad;
  const std::size_t kv = static_cast<std::size_t>(kTcWarps) *
                         (static_cast<std::size_t>(kTcDecodeWarpKeys) * ld +
                          static_cast<std::size_t>(s.d) * (kTcDecodeWarpKeys + kTcPad)) *
                         sizeof(bf16);
  const std::size_t red = static_cast<std::size_t>(kTcWarps) * 16 * (s.d + 2) * sizeof(float);
  const std::size_t smem = kv > red ? kv : red;
  const int chunks = static_cast<int>(ceil_div(s.Tk, kFlashDecodeChunk));
  const float scale_log2 = attention_scale(s.d) * kLog2e;
  with_head_dim_capacity(s.d, [&](auto cap) {
    const auto kernel = flash_decode_tc_kernel<decltype(cap)::value>;
    allow_dynamic_smem(kernel, smem);
    simt::launch(kernel, dim3(chunks, s.Hkv, s.B), kTcThreads, smem, stream, out, lse, scratch, q,
                 k, v, s, scale_log2, vec);
  });
}

}  // namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND::tc_forward
