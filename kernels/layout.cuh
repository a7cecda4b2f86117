// Data movement without arithmetic (beyond fp32 ↔ bf16 rounding and add_rows' sums):
//   strided_convert: out[view_out(i)] = convert(in[view_in(i)]) for every index i of a shape of up
//                    to kMaxViewDims dimensions (making a view contiguous, transposing, casting)
//   copy_rows:       out[out_rows[i]] = in[in_rows[i]] for rows of H elements (gather, scatter)
//   add_rows:        out[rows[i]] += in[i], repeated rows summed in order of i (gather's backward)
//
// strided_convert: a grid-stride loop, one element per thread step, offsets of both views from
// the row-major index (div/mod per dimension); reads sizeof(From) and writes sizeof(To) per
// element: memory-bound, scattered when a view is transposed. copy_rows: a grid-stride loop over
// M·H elements, reading and writing sizeof(T) each. add_rows: one thread per column walking the M
// rows in order, so repeated rows sum deterministically without atomics (M is small: image rows);
// reads 2·sizeof(T) and writes sizeof(T) per element, parallel over H only.
//
// Launch: grid-stride, grid ⌈count / 256⌉ (capped at 65535; count = elements of the view, M·H,
// or H for add_rows), block 256, no shared memory. Worked example (H100 roofline: 3.35 TB/s HBM):
// casting minimind2-small's ~25.8 M fp32 weights to bf16 (contiguous views), 6 B per element =
// 155 MB → 46 µs; scattering the 4·49 image tokens of 4 images (M = 196, H = 512, bf16) into the
// token embeddings, 4 B·M·H = 0.4 MB → 0.1 µs, so launch latency dominates.
#pragma once

#include "kernels/common.cuh"
#include "kernels/layout.h"

namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND {

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

#define MINIVLM_INSTANTIATE_CONVERT(To, From)                                   \
  template void strided_convert<To, From>(To*, const StridedView&, const From*, \
                                          const StridedView&, cudaStream_t, int);
MINIVLM_INSTANTIATE_CONVERT(uint8_t, uint8_t)
MINIVLM_INSTANTIATE_CONVERT(uint16_t, uint16_t)
MINIVLM_INSTANTIATE_CONVERT(uint32_t, uint32_t)
MINIVLM_INSTANTIATE_CONVERT(uint64_t, uint64_t)
MINIVLM_INSTANTIATE_CONVERT(float, bf16)
MINIVLM_INSTANTIATE_CONVERT(bf16, float)
#undef MINIVLM_INSTANTIATE_CONVERT

MINIVLM_INSTANTIATE_STORAGE_TYPES(copy_rows)
MINIVLM_INSTANTIATE_STORAGE_TYPES(add_rows)

}  // namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND
