// Definitions of cuda/kernels/launchers.inc, compiled once per back-end: by g++ against the SIMT
// emulator (cuda/kernels/device_kernels_emu.cpp) and by nvcc for the GPU.
//
// strided_copy, binary, scale: grid-stride loops, one element per thread step; memory-bound
// (strided_copy reads scattered). sum_dim: one thread per output element, sequential over n.
// softmax: one block per row, block max and sum (reduce.cuh), 2 reads + 1 write per element.
// attention (naive): forward one block per (query row, head, batch) with the row's Tk scores in
// shared memory, O(Tq·Tk·hd) FLOPs read at O(Tq·Tk·hd) bytes (no reuse: far below the flash
// kernel's arithmetic intensity). Backward: rowsum(dO∘O) per row; dQ one block per query row;
// dK/dV one block per (key, kv head) over every query row of its group.
#pragma once

#include <cmath>

#include "cuda/kernels/device_kernels.h"
#include "kernels/reduce.cuh"

namespace minivlm::cuda::kern::MINIVLM_KERNEL_BACKEND {

using kernels::MINIVLM_KERNEL_BACKEND::block_reduce;
using kernels::MINIVLM_KERNEL_BACKEND::block_sum;
using kernels::MINIVLM_KERNEL_BACKEND::from_float;
using kernels::MINIVLM_KERNEL_BACKEND::grid_stride_blocks;
using kernels::MINIVLM_KERNEL_BACKEND::MaxOp;
using kernels::MINIVLM_KERNEL_BACKEND::require;
using kernels::MINIVLM_KERNEL_BACKEND::require_block_size;
using kernels::MINIVLM_KERNEL_BACKEND::to_float;

__device__ __forceinline__ std::size_t global_thread() {
  return static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ std::size_t grid_threads() {
  return static_cast<std::size_t>(gridDim.x) * blockDim.x;
}

template <typename T>
__global__ void strided_copy_kernel(T* out, const T* in, StridedView view, std::size_t n) {
  for (std::size_t i = global_thread(); i < n; i += grid_threads()) {
    std::size_t rest = i;
    int64_t off = 0;
    for (int d = view.ndim - 1; d >= 0; --d) {
      const std::size_t extent = static_cast<std::size_t>(view.shape[d]);
      off += static_cast<int64_t>(rest % extent) * view.stride[d];
      rest /= extent;
    }
    out[i] = in[off];
  }
}

template <typename T>
__global__ void binary_kernel(T* out, const T* a, const T* b, std::size_t n, BinaryOp op) {
  for (std::size_t i = global_thread(); i < n; i += grid_threads()) {
    const float x = to_float(a[i]), y = to_float(b[i]);
    const float r = op == BinaryOp::add ? x + y : op == BinaryOp::sub ? x - y : x * y;
    out[i] = from_float<T>(r);
  }
}

template <typename T>
__global__ void scale_kernel(T* out, const T* a, float s, std::size_t n) {
  for (std::size_t i = global_thread(); i < n; i += grid_threads())
    out[i] = from_float<T>(to_float(a[i]) * s);
}

template <typename T>
__global__ void sum_dim_kernel(T* out, const T* in, int64_t outer, int64_t n, int64_t inner) {
  const std::size_t total = static_cast<std::size_t>(outer * inner);
  for (std::size_t idx = global_thread(); idx < total; idx += grid_threads()) {
    const int64_t o = static_cast<int64_t>(idx) / inner, j = static_cast<int64_t>(idx) % inner;
    float acc = 0.0f;
    for (int64_t k = 0; k < n; ++k) acc += to_float(in[(o * n + k) * inner + j]);
    out[idx] = from_float<T>(acc);
  }
}

template <typename T>
__global__ void softmax_forward_kernel(T* out, const T* inp, int n) {
  const std::size_t row = static_cast<std::size_t>(blockIdx.x) * static_cast<std::size_t>(n);
  const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
  float mx = -INFINITY;
  for (int c = tid; c < n; c += threads) mx = fmaxf(mx, to_float(inp[row + c]));
  mx = block_reduce(mx, MaxOp{}, -INFINITY);
  float sum = 0.0f;
  for (int c = tid; c < n; c += threads) sum += expf(to_float(inp[row + c]) - mx);
  const float inv = 1.0f / block_sum(sum);
  for (int c = tid; c < n; c += threads)
    out[row + c] = from_float<T>(expf(to_float(inp[row + c]) - mx) * inv);
}

template <typename T>
__global__ void softmax_backward_kernel(T* dinp, const T* dout, const T* out, int n) {
  const std::size_t row = static_cast<std::size_t>(blockIdx.x) * static_cast<std::size_t>(n);
  const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
  float dot = 0.0f;
  for (int c = tid; c < n; c += threads) dot += to_float(out[row + c]) * to_float(dout[row + c]);
  dot = block_sum(dot);
  for (int c = tid; c < n; c += threads)
    dinp[row + c] = from_float<T>(to_float(out[row + c]) * (to_float(dout[row + c]) - dot));
}

// Keys visible to query row i: [0, visible_keys(s, i)).
__device__ __forceinline__ int visible_keys(const AttentionShape& s, int i) {
  if (!s.causal) return s.Tk;
  const int v = i + 1 + s.Tk - s.Tq;
  return v < 0 ? 0 : (v > s.Tk ? s.Tk : v);
}

template <typename T>
__device__ float dot_row(const T* a, const T* b, int hd) {
  float acc = 0.0f;
  for (int d = 0; d < hd; ++d) acc += to_float(a[d]) * to_float(b[d]);
  return acc;
}

// grid (Tq, nq, B); dynamic shared memory: Tk floats (the row's scores, then probabilities).
template <typename T>
__global__ void attention_forward_kernel(T* out, float* lse, const T* q, const T* k, const T* v,
                                         AttentionShape s, float scale) {
  float* p = dynamic_smem<float>();
  const int i = static_cast<int>(blockIdx.x), h = static_cast<int>(blockIdx.y);
  const int b = static_cast<int>(blockIdx.z), kh = h / (s.nq / s.nkv);
  const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
  const std::size_t qrow = ((static_cast<std::size_t>(b) * s.Tq + i) * s.nq + h) * s.hd;
  const std::size_t kstride = static_cast<std::size_t>(s.nkv) * s.hd;
  const std::size_t kbase = static_cast<std::size_t>(b) * s.Tk * kstride + kh * s.hd;
  const int vis = visible_keys(s, i);
  float* lrow = lse + (static_cast<std::size_t>(b) * s.nq + h) * s.Tq + i;
  if (vis == 0) {
    for (int d = tid; d < s.hd; d += threads) out[qrow + d] = from_float<T>(0.0f);
    if (tid == 0) *lrow = -INFINITY;
    return;
  }
  float mx = -INFINITY;
  for (int j = tid; j < vis; j += threads) {
    p[j] = dot_row(q + qrow, k + kbase + j * kstride, s.hd) * scale;
    mx = fmaxf(mx, p[j]);
  }
  mx = block_reduce(mx, MaxOp{}, -INFINITY);
  float sum = 0.0f;
  for (int j = tid; j < vis; j += threads) {
    p[j] = expf(p[j] - mx);
    sum += p[j];
  }
  sum = block_sum(sum);  // its barriers also publish every p[j]
  for (int d = tid; d < s.hd; d += threads) {
    float acc = 0.0f;
    for (int j = 0; j < vis; ++j) acc += p[j] * to_float(v[kbase + j * kstride + d]);
    out[qrow + d] = from_float<T>(acc / sum);
  }
  if (tid == 0) *lrow = mx + logf(sum);
}

// grid (Tq, nq, B): drow[b, h, i] = Σ_d dout·out of query row i.
template <typename T>
__global__ void attention_rowdot_kernel(float* drow, const T* dout, const T* out,
                                        AttentionShape s) {
  const int i = static_cast<int>(blockIdx.x), h = static_cast<int>(blockIdx.y);
  const int b = static_cast<int>(blockIdx.z);
  const std::size_t row = ((static_cast<std::size_t>(b) * s.Tq + i) * s.nq + h) * s.hd;
  float acc = 0.0f;
  for (int d = static_cast<int>(threadIdx.x); d < s.hd; d += static_cast<int>(blockDim.x))
    acc += to_float(dout[row + d]) * to_float(out[row + d]);
  acc = block_sum(acc);
  if (threadIdx.x == 0) drow[(static_cast<std::size_t>(b) * s.nq + h) * s.Tq + i] = acc;
}

// grid (Tq, nq, B); shared: Tk floats of dS for the row. dq_i = scale · Σ_j dS_ij k_j.
template <typename T>
__global__ void attention_dq_kernel(T* dq, const T* dout, const T* q, const T* k, const T* v,
                                    const float* lse, const float* drow, AttentionShape s,
                                    float scale) {
  float* ds = dynamic_smem<float>();
  const int i = static_cast<int>(blockIdx.x), h = static_cast<int>(blockIdx.y);
  const int b = static_cast<int>(blockIdx.z), kh = h / (s.nq / s.nkv);
  const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
  const std::size_t qrow = ((static_cast<std::size_t>(b) * s.Tq + i) * s.nq + h) * s.hd;
  const std::size_t kstride = static_cast<std::size_t>(s.nkv) * s.hd;
  const std::size_t kbase = static_cast<std::size_t>(b) * s.Tk * kstride + kh * s.hd;
  const std::size_t stat = (static_cast<std::size_t>(b) * s.nq + h) * s.Tq + i;
  const int vis = visible_keys(s, i);
  for (int j = tid; j < vis; j += threads) {
    const float p = expf(dot_row(q + qrow, k + kbase + j * kstride, s.hd) * scale - lse[stat]);
    const float dp = dot_row(dout + qrow, v + kbase + j * kstride, s.hd);
    ds[j] = p * (dp - drow[stat]);
  }
  __syncthreads();
  for (int d = tid; d < s.hd; d += threads) {
    float acc = 0.0f;
    for (int j = 0; j < vis; ++j) acc += ds[j] * to_float(k[kbase + j * kstride + d]);
    dq[qrow + d] = from_float<T>(acc * scale);
  }
}

// grid (Tk, nkv, B); shared: P and dS of key j against every query row of the group, 2·g·Tq
// floats. dv_j = Σ P_ij dO_i, dk_j = scale · Σ dS_ij q_i over the group's heads and rows.
template <typename T>
__global__ void attention_dkdv_kernel(T* dk, T* dv, const T* dout, const T* q, const T* k,
                                      const T* v, const float* lse, const float* drow,
                                      AttentionShape s, float scale) {
  const int group = s.nq / s.nkv;
  const int rows = group * s.Tq;
  float* p = dynamic_smem<float>();
  float* ds = p + rows;
  const int j = static_cast<int>(blockIdx.x), kh = static_cast<int>(blockIdx.y);
  const int b = static_cast<int>(blockIdx.z);
  const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
  const std::size_t krow = ((static_cast<std::size_t>(b) * s.Tk + j) * s.nkv + kh) * s.hd;
  for (int r = tid; r < rows; r += threads) {
    const int h = kh * group + r / s.Tq, i = r % s.Tq;
    const std::size_t qrow = ((static_cast<std::size_t>(b) * s.Tq + i) * s.nq + h) * s.hd;
    const std::size_t stat = (static_cast<std::size_t>(b) * s.nq + h) * s.Tq + i;
    if (j < visible_keys(s, i)) {
      p[r] = expf(dot_row(q + qrow, k + krow, s.hd) * scale - lse[stat]);
      ds[r] = p[r] * (dot_row(dout + qrow, v + krow, s.hd) - drow[stat]);
    } else {
      p[r] = 0.0f;
      ds[r] = 0.0f;
    }
  }
  __syncthreads();
  for (int d = tid; d < s.hd; d += threads) {
    float acc_v = 0.0f, acc_k = 0.0f;
    for (int r = 0; r < rows; ++r) {
      const int h = kh * group + r / s.Tq, i = r % s.Tq;
      const std::size_t qrow = ((static_cast<std::size_t>(b) * s.Tq + i) * s.nq + h) * s.hd;
      acc_v += p[r] * to_float(dout[qrow + d]);
      acc_k += ds[r] * to_float(q[qrow + d]);
    }
    dv[krow + d] = from_float<T>(acc_v);
    dk[krow + d] = from_float<T>(acc_k * scale);
  }
}

inline void require_attention(const char* name, const AttentionShape& s) {
  require(s.B >= 0 && s.Tq >= 0 && s.Tk >= 0 && s.hd >= 1 && s.nkv >= 1 && s.nq % s.nkv == 0, name,
          "bad shape: nq must be a multiple of nkv, hd >= 1");
}

template <typename T>
void strided_copy(T* out, const T* in, const StridedView& view, cudaStream_t stream,
                  int block_size) {
  require_block_size("strided_copy", block_size);
  require(view.ndim >= 0 && view.ndim <= kMaxViewDims, "strided_copy", "too many dimensions");
  const std::size_t n = view.numel();
  if (n == 0) return;
  simt::launch(strided_copy_kernel<T>, grid_stride_blocks(n, block_size), block_size, 0, stream,
               out, in, view, n);
}

template <typename T>
void binary(T* out, const T* a, const T* b, std::size_t n, BinaryOp op, cudaStream_t stream,
            int block_size) {
  require_block_size("binary", block_size);
  if (n == 0) return;
  simt::launch(binary_kernel<T>, grid_stride_blocks(n, block_size), block_size, 0, stream, out, a,
               b, n, op);
}

template <typename T>
void scale(T* out, const T* a, float s, std::size_t n, cudaStream_t stream, int block_size) {
  require_block_size("scale", block_size);
  if (n == 0) return;
  simt::launch(scale_kernel<T>, grid_stride_blocks(n, block_size), block_size, 0, stream, out, a, s,
               n);
}

template <typename T>
void sum_dim(T* out, const T* in, int64_t outer, int64_t n, int64_t inner, cudaStream_t stream,
             int block_size) {
  require_block_size("sum_dim", block_size);
  const std::size_t total = static_cast<std::size_t>(outer * inner);
  if (total == 0) return;
  simt::launch(sum_dim_kernel<T>, grid_stride_blocks(total, block_size), block_size, 0, stream, out,
               in, outer, n, inner);
}

template <typename T>
void softmax_forward(T* out, const T* inp, int rows, int n, cudaStream_t stream, int block_size) {
  require_block_size("softmax_forward", block_size);
  if (rows == 0 || n == 0) return;
  simt::launch(softmax_forward_kernel<T>, rows, block_size, 0, stream, out, inp, n);
}

template <typename T>
void softmax_backward(T* dinp, const T* dout, const T* out, int rows, int n, cudaStream_t stream,
                      int block_size) {
  require_block_size("softmax_backward", block_size);
  if (rows == 0 || n == 0) return;
  simt::launch(softmax_backward_kernel<T>, rows, block_size, 0, stream, dinp, dout, out, n);
}

template <typename T>
void attention_forward(T* out, float* lse, const T* q, const T* k, const T* v,
                       const AttentionShape& s, cudaStream_t stream, int block_size) {
  require_block_size("attention_forward", block_size);
  require_attention("attention_forward", s);
  if (s.B == 0 || s.Tq == 0 || s.nq == 0) return;
  const std::size_t smem = static_cast<std::size_t>(s.Tk > 0 ? s.Tk : 1) * sizeof(float);
  kernels::MINIVLM_KERNEL_BACKEND::allow_dynamic_smem(attention_forward_kernel<T>, smem);
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.hd));
  simt::launch(attention_forward_kernel<T>, dim3(s.Tq, s.nq, s.B), block_size, smem, stream, out,
               lse, q, k, v, s, scale);
}

template <typename T>
void attention_backward(T* dq, T* dk, T* dv, float* scratch, const T* dout, const T* q, const T* k,
                        const T* v, const T* out, const float* lse, const AttentionShape& s,
                        cudaStream_t stream, int block_size) {
  require_block_size("attention_backward", block_size);
  require_attention("attention_backward", s);
  if (s.B == 0 || s.nq == 0) return;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.hd));
  if (s.Tq > 0) {
    simt::launch(attention_rowdot_kernel<T>, dim3(s.Tq, s.nq, s.B), block_size, 0, stream, scratch,
                 dout, out, s);
    const std::size_t smem = static_cast<std::size_t>(s.Tk > 0 ? s.Tk : 1) * sizeof(float);
    kernels::MINIVLM_KERNEL_BACKEND::allow_dynamic_smem(attention_dq_kernel<T>, smem);
    simt::launch(attention_dq_kernel<T>, dim3(s.Tq, s.nq, s.B), block_size, smem, stream, dq, dout,
                 q, k, v, lse, scratch, s, scale);
  }
  if (s.Tk > 0) {
    const std::size_t smem =
        2 * static_cast<std::size_t>(s.nq / s.nkv) * (s.Tq > 0 ? s.Tq : 1) * sizeof(float);
    kernels::MINIVLM_KERNEL_BACKEND::allow_dynamic_smem(attention_dkdv_kernel<T>, smem);
    simt::launch(attention_dkdv_kernel<T>, dim3(s.Tk, s.nkv, s.B), block_size, smem, stream, dk, dv,
                 dout, q, k, v, lse, scratch, s, scale);
  }
}

MINIVLM_INSTANTIATE_STORAGE_TYPES(strided_copy)
MINIVLM_INSTANTIATE_STORAGE_TYPES(binary)
MINIVLM_INSTANTIATE_STORAGE_TYPES(scale)
MINIVLM_INSTANTIATE_STORAGE_TYPES(sum_dim)
MINIVLM_INSTANTIATE_STORAGE_TYPES(softmax_forward)
MINIVLM_INSTANTIATE_STORAGE_TYPES(softmax_backward)
MINIVLM_INSTANTIATE_STORAGE_TYPES(attention_forward)
MINIVLM_INSTANTIATE_STORAGE_TYPES(attention_backward)

}  // namespace minivlm::cuda::kern::MINIVLM_KERNEL_BACKEND
