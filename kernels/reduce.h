// Scratch sizes of the deterministic column sums of kernels/reduce.cuh (the bias gradient, the
// norms' weight gradients): over many rows, chunks of kColumnSumChunkRows rows are first summed
// into fp32 scratch rows, then those rows are summed.
#pragma once

#include <cstddef>

namespace minivlm::kernels {

inline constexpr int kColumnSumChunkRows = 256;
inline constexpr std::size_t column_sum_scratch_floats(int R, int C) {
  const int chunks = (R + kColumnSumChunkRows - 1) / kColumnSumChunkRows;
  return chunks > 1 ? static_cast<std::size_t>(chunks) * static_cast<std::size_t>(C) : 0;
}

}  // namespace minivlm::kernels
