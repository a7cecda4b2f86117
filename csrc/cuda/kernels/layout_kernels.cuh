// Definitions of cuda/kernels/layout_launchers.inc, compiled once per back-end: by g++ against the
// SIMT emulator (cuda/kernels/layout_kernels_emu.cpp) and by nvcc (kernels/cuda/layout_kernels.cu).
//
// strided_convert: a grid-stride loop, one element per thread step, offsets of both views from
// the row-major index (div/mod per dimension); memory-bound, scattered when a view is transposed.
// copy_rows: a grid-stride loop over M·H elements. add_rows: one thread per column walking the M
// rows in order, so repeated rows sum deterministically without atomics (M is small: image rows).
// silu: element-wise, one read and one write (forward), three accesses (backward) per element.
#pragma once

#include "cuda/kernels/layout_kernels.h"
#include "kernels/common.cuh"

namespace minivlm::cuda::kern::MINIVLM_KERNEL_BACKEND {

using kernels::MINIVLM_KERNEL_BACKEND::from_float;
using kernels::MINIVLM_KERNEL_BACKEND::grid_stride_blocks;
using kernels::MINIVLM_KERNEL_BACKEND::require;
using kernels::MINIVLM_KERNEL_BACKEND::require_block_size;
using kernels::MINIVLM_KERNEL_BACKEND::sigmoid;
using kernels::MINIVLM_KERNEL_BACKEND::to_float;

__device__ __forceinline__ int64_t view_offset(const StridedView& v, std::size_t i) {
  int64_t off = 0;
  for (int d = v.ndim - 1; d >= 0; --d) {
    const std::size_t extent = static_cast<std::size_t>(v.shape[d]);
    off += static_cast<int64_t>(i % extent) * v.stride[d];
    i /= extent;
  }
  return off;
}

template <typename To, typename From>
__device__ __forceinline__ To convert_element(From x) {
  if constexpr (std::is_same_v<To, From>) {
    return x;
  } else {
    return from_float<To>(to_float(x));
  }
}

template <typename To, typename From>
__global__ void strided_convert_kernel(To* out, StridedView out_view, const From* in,
                                       StridedView in_view, std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride)
    out[view_offset(out_view, i)] = convert_element<To>(in[view_offset(in_view, i)]);
}

template <typename T>
__global__ void copy_rows_kernel(T* out, const int* out_rows, const T* in, const int* in_rows,
                                 std::size_t M, std::size_t H) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t e = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < M * H;
       e += stride) {
    const std::size_t i = e / H, c = e % H;
    const std::size_t dst = out_rows != nullptr ? static_cast<std::size_t>(out_rows[i]) : i;
    if (in == nullptr) {
      out[dst * H + c] = from_float<T>(0.0f);
    } else {
      const std::size_t src = in_rows != nullptr ? static_cast<std::size_t>(in_rows[i]) : i;
      out[dst * H + c] = in[src * H + c];
    }
  }
}

template <typename T>
__global__ void add_rows_kernel(T* out, const int* rows, const T* in, int M, std::size_t H) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t c = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < H;
       c += stride) {
    for (int i = 0; i < M; ++i) {
      T* o = out + static_cast<std::size_t>(rows[i]) * H + c;
      *o = from_float<T>(to_float(*o) + to_float(in[static_cast<std::size_t>(i) * H + c]));
    }
  }
}

template <typename T>
__global__ void silu_forward_kernel(T* out, const T* inp, std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float x = to_float(inp[i]);
    out[i] = from_float<T>(x * sigmoid(x));
  }
}

template <typename T>
__global__ void silu_backward_kernel(T* dinp, const T* dout, const T* inp, std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float x = to_float(inp[i]), s = sigmoid(x);
    dinp[i] = from_float<T>(to_float(dout[i]) * s * (1.0f + x * (1.0f - s)));
  }
}

template <typename To, typename From>
void strided_convert(To* out, const StridedView& out_view, const From* in,
                     const StridedView& in_view, cudaStream_t stream, int block_size) {
  require_block_size("strided_convert", block_size);
  require(out_view.ndim == in_view.ndim && out_view.ndim >= 0 && out_view.ndim <= kMaxViewDims,
          "strided_convert", "views of different or too many dimensions");
  for (int d = 0; d < out_view.ndim; ++d)
    require(out_view.shape[d] == in_view.shape[d], "strided_convert", "views of different shapes");
  const std::size_t n = out_view.numel();
  if (n == 0) return;
  simt::launch(strided_convert_kernel<To, From>, grid_stride_blocks(n, block_size), block_size, 0,
               stream, out, out_view, in, in_view, n);
}

template <typename T>
void copy_rows(T* out, const int* out_rows, const T* in, const int* in_rows, int M, int64_t H,
               cudaStream_t stream, int block_size) {
  require_block_size("copy_rows", block_size);
  require(M >= 0 && H >= 0, "copy_rows", "negative row count or width");
  const std::size_t n = static_cast<std::size_t>(M) * static_cast<std::size_t>(H);
  if (n == 0) return;
  simt::launch(copy_rows_kernel<T>, grid_stride_blocks(n, block_size), block_size, 0, stream, out,
               out_rows, in, in_rows, static_cast<std::size_t>(M), static_cast<std::size_t>(H));
}

template <typename T>
void add_rows(T* out, const int* rows, const T* in, int M, int64_t H, cudaStream_t stream,
              int block_size) {
  require_block_size("add_rows", block_size);
  require(M >= 0 && H >= 0, "add_rows", "negative row count or width");
  if (M == 0 || H == 0) return;
  simt::launch(add_rows_kernel<T>, grid_stride_blocks(static_cast<std::size_t>(H), block_size),
               block_size, 0, stream, out, rows, in, M, static_cast<std::size_t>(H));
}

template <typename T>
void silu_forward(T* out, const T* inp, std::size_t n, cudaStream_t stream, int block_size) {
  require_block_size("silu_forward", block_size);
  if (n == 0) return;
  simt::launch(silu_forward_kernel<T>, grid_stride_blocks(n, block_size), block_size, 0, stream,
               out, inp, n);
}

template <typename T>
void silu_backward(T* dinp, const T* dout, const T* inp, std::size_t n, cudaStream_t stream,
                   int block_size) {
  require_block_size("silu_backward", block_size);
  if (n == 0) return;
  simt::launch(silu_backward_kernel<T>, grid_stride_blocks(n, block_size), block_size, 0, stream,
               dinp, dout, inp, n);
}

#define MINIVLM_INSTANTIATE_CONVERT(To, From)                                   \
  template void strided_convert<To, From>(To*, const StridedView&, const From*, \
                                          const StridedView&, cudaStream_t, int);
MINIVLM_INSTANTIATE_CONVERT(uint8_t, uint8_t)
MINIVLM_INSTANTIATE_CONVERT(uint16_t, uint16_t)
MINIVLM_INSTANTIATE_CONVERT(uint32_t, uint32_t)
MINIVLM_INSTANTIATE_CONVERT(uint64_t, uint64_t)
MINIVLM_INSTANTIATE_CONVERT(float, kernels::bf16)
MINIVLM_INSTANTIATE_CONVERT(kernels::bf16, float)
#undef MINIVLM_INSTANTIATE_CONVERT

MINIVLM_INSTANTIATE_STORAGE_TYPES(copy_rows)
MINIVLM_INSTANTIATE_STORAGE_TYPES(add_rows)
MINIVLM_INSTANTIATE_STORAGE_TYPES(silu_forward)
MINIVLM_INSTANTIATE_STORAGE_TYPES(silu_backward)

}  // namespace minivlm::cuda::kern::MINIVLM_KERNEL_BACKEND
