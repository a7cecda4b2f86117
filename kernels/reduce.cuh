// Deterministic reductions the kernel families share: warp and block reductions, and column sums
// of a row-major matrix. Each combines its operands in an order fixed by the launch shape alone,
// never by which thread or block runs first, and uses no atomics: the results are the same bits
// under every schedule of the SIMT emulator and on every run on a GPU.
//
// Block reductions: a shuffle-down tree inside each warp, the warp results through shared memory,
// a second tree in warp 0, and the total broadcast through shared memory (two barriers; every
// thread of a one-dimensional block of whole warps must call them the same number of times).
//
// Column sums, out[c] = Σ_r in[r·ld + c]: blocks of 32×8 threads, one block column per 32 columns,
// one block row per chunk of rows; thread (x, y) sums rows y, y+8, ... of its chunk for column x
// (coalesced: a warp reads 32 consecutive columns of one row), then the 8 partial sums are added in
// order of y. Several chunks write fp32 chunk sums to scratch and a second launch adds those.
// Bytes: R·C·sizeof(Tin) read, C·sizeof(Tout) written (+ 8·chunks·C through scratch when R >
// kColumnSumChunkRows); 1 FLOP per element read, so it runs at memory bandwidth when C ≥ ~4K
// columns fill the GPU, and below it for narrow matrices.
//
// Worked example (H100 roofline: 3.35 TB/s HBM, 67 TFLOP/s fp32 non-tensor): the column sum of a
// CLIP bias gradient, R = 788 rows of C = 3072 bf16: grid (96, 4) blocks of 32×8 threads, 4.8 MB
// read → 1.5 µs, then (96, 1) over the 4 chunk rows.
#pragma once

#include "kernels/common.cuh"
#include "kernels/reduce.h"

namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND {

struct SumOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
};
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// The reduction of the warp's 32 values, valid in lane 0 (the shuffles read past lane 31 as the
// lane's own value, which only the discarded upper lanes see).
template <typename Op>
__device__ __forceinline__ float warp_reduce(float v, Op op) {
  for (int offset = 16; offset > 0; offset /= 2) v = op(v, __shfl_down_sync(kFullMask, v, offset));
  return v;
}

// The reduction over the whole block, returned to every thread.
template <typename Op>
__device__ float block_reduce(float v, Op op, float identity) {
  __shared__ float warp_results[32];
  __shared__ float result;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int warps = static_cast<int>(blockDim.x) / 32;
  v = warp_reduce(v, op);
  if (lane == 0) warp_results[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = warp_reduce(lane < warps ? warp_results[lane] : identity, op);
    if (lane == 0) result = v;
  }
  __syncthreads();
  return result;
}

__device__ __forceinline__ float block_sum(float v) { return block_reduce(v, SumOp{}, 0.0f); }

inline constexpr int kColumnSumTile = 32;
inline constexpr int kColumnSumPhases = 8;

// out[blockIdx.y · C + c] = Σ in[r·ld + c] over the rows r of chunk blockIdx.y.
template <typename Tin, typename Tout>
__global__ void column_sum_kernel(Tout* out, const Tin* in, int R, int C, int ld, int chunk_rows) {
  __shared__ float partial[kColumnSumPhases][kColumnSumTile];
  const int x = static_cast<int>(threadIdx.x), y = static_cast<int>(threadIdx.y);
  const int c = static_cast<int>(blockIdx.x) * kColumnSumTile + x;
  const int r0 = static_cast<int>(blockIdx.y) * chunk_rows;
  const int r1 = min(R, r0 + chunk_rows);
  float s = 0.0f;
  if (c < C) {
    for (int r = r0 + y; r < r1; r += kColumnSumPhases) {
      s += to_float(in[static_cast<std::size_t>(r) * static_cast<std::size_t>(ld) + c]);
    }
  }
  partial[y][x] = s;
  __syncthreads();
  if (y == 0 && c < C) {
    float total = 0.0f;
    for (int p = 0; p < kColumnSumPhases; ++p) total += partial[p][x];
    out[static_cast<std::size_t>(blockIdx.y) * static_cast<std::size_t>(C) + c] =
        from_float<Tout>(total);
  }
}

// out [C] = column sums of in [R, C] with row stride ld; scratch [column_sum_scratch_floats(R, C)].
template <typename Tin, typename Tout>
void column_sum(Tout* out, float* scratch, const Tin* in, int R, int C, int ld,
                cudaStream_t stream) {
  const dim3 block(kColumnSumTile, kColumnSumPhases);
  const auto tiles = static_cast<unsigned>(ceil_div(static_cast<std::size_t>(C), kColumnSumTile));
  const auto chunks =
      static_cast<unsigned>(ceil_div(static_cast<std::size_t>(R), kColumnSumChunkRows));
  if (chunks <= 1) {
    simt::launch(column_sum_kernel<Tin, Tout>, dim3(tiles, 1), block, 0, stream, out, in, R, C, ld,
                 R);
    return;
  }
  simt::launch(column_sum_kernel<Tin, float>, dim3(tiles, chunks), block, 0, stream, scratch, in, R,
               C, ld, kColumnSumChunkRows);
  simt::launch(column_sum_kernel<float, Tout>, dim3(tiles, 1), block, 0, stream, out,
               static_cast<const float*>(scratch), static_cast<int>(chunks), C, C,
               static_cast<int>(chunks));
}

}  // namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND
