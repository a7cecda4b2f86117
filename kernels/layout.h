// Launchers of kernels/layout.cuh: strided copies with storage-type conversion, and row gathers
// and scatters.
#pragma once

#include "kernels/launchers.h"

namespace minivlm::kernels {

inline constexpr int kMaxViewDims = 8;

// A strided view: element (i0, .., i_{ndim-1}) lives at base + Σ i_d · stride[d].
struct StridedView {
  int ndim = 0;
  int64_t shape[kMaxViewDims] = {};
  int64_t stride[kMaxViewDims] = {};
  std::size_t numel() const {
    std::size_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= static_cast<std::size_t>(shape[d]);
    return n;
  }
};

}  // namespace minivlm::kernels

// clang-format off
MINIVLM_KERNEL_LAUNCHERS(
// out (view out_view) ← in (view in_view), element by element in row-major order of the common
// shape (the two views have the same shape). Instantiated for equal storage of 1, 2, 4 and 8 bytes
// (uint8_t .. uint64_t: bits are copied) and for the conversions float ↔ bf16 (round to nearest
// even). The destination's elements must not overlap.
template <typename To, typename From>
void strided_convert(To* out, const StridedView& out_view, const From* in,
                     const StridedView& in_view, cudaStream_t stream, int block_size = 256);
// Rows of H elements: out[out_rows[i]] = in[in_rows[i]] for i < M (a null index array means i;
// a null `in` writes zeros). The out_rows of one call are distinct.
template <typename T>
void copy_rows(T* out, const int* out_rows, const T* in, const int* in_rows, int M, int64_t H,
               cudaStream_t stream, int block_size = 256);
// out[rows[i]] += in[i] for i < M, rows may repeat; each column sums in order of i.
template <typename T>
void add_rows(T* out, const int* rows, const T* in, int M, int64_t H, cudaStream_t stream,
              int block_size = 256);
)
// clang-format on
