// What every kernel family shares: the back-end namespace, conversions between storage types and
// fp32, launch-shape checks and the instantiation macro.
//
// A family (kernels/<family>.cuh) defines its kernels and the launchers declared in
// kernels/<family>.h, then instantiates the launchers for float and bf16. It is therefore
// compiled once per library, by a one-line translation unit that kernels/CMakeLists.txt generates
// from its list of families: <family>.cu for nvcc and <family>.cpp for g++ against the SIMT
// emulator. Device helpers shared by several families (this file, reduce.cuh) are templates or
// inline and may be included anywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/launchers.h"
#include "kernels/portable.h"

#ifdef __CUDACC__
#define MINIVLM_KERNEL_BACKEND gpu
#else
#define MINIVLM_KERNEL_BACKEND emu
#endif

// Explicit instantiation of a launcher template for both storage types.
#define MINIVLM_INSTANTIATE_STORAGE_TYPES(launcher)   \
  template decltype(launcher<float>) launcher<float>; \
  template decltype(launcher<bf16>) launcher<bf16>;

namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND {

inline constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_float(float x) {
  if constexpr (std::is_same_v<T, float>) {
    return x;
  } else {
    return __float2bfloat16_rn(x);
  }
}

// Two bf16 in one 32-bit register, `lo` in the low half: the pairs that the fragments of
// simt::mma_m16n8k16_bf16 hold.
__device__ __forceinline__ std::uint32_t pack_bf16x2(bf16 lo, bf16 hi) {
  return static_cast<std::uint32_t>(__bfloat16_as_ushort(lo)) |
         (static_cast<std::uint32_t>(__bfloat16_as_ushort(hi)) << 16);
}
__device__ __forceinline__ std::uint32_t pack_bf16x2(float lo, float hi) {
  return pack_bf16x2(__float2bfloat16_rn(lo), __float2bfloat16_rn(hi));
}

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

inline constexpr std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

// Grid-stride loops over n elements use at most this many blocks; the result never depends on it.
inline constexpr std::size_t kMaxGridStrideBlocks = 65535;
inline unsigned grid_stride_blocks(std::size_t n, int block_size) {
  const std::size_t blocks = ceil_div(n, static_cast<std::size_t>(block_size));
  return static_cast<unsigned>(blocks < 1                      ? 1
                               : blocks > kMaxGridStrideBlocks ? kMaxGridStrideBlocks
                                                               : blocks);
}

inline void require(bool ok, const char* launcher, const std::string& what) {
  if (!ok) throw std::invalid_argument(std::string(launcher) + ": " + what);
}

// Whole warps only: the reductions shuffle with a full mask.
inline void require_block_size(const char* launcher, int block_size) {
  require(block_size >= 32 && block_size <= 1024 && block_size % 32 == 0, launcher,
          "block_size " + std::to_string(block_size) + " is not a multiple of 32 in [32, 1024]");
}

inline void require_rows(const char* launcher, int N, int C) {
  require(N >= 0 && C >= 1, launcher,
          "needs N >= 0 rows of C >= 1 columns, got N = " + std::to_string(N) +
              ", C = " + std::to_string(C));
}

// Raises a kernel's dynamic shared-memory limit when a launch needs more than the default 48 KiB.
template <typename... Params>
void allow_dynamic_smem(void (*kernel)(Params...), std::size_t bytes) {
  constexpr std::size_t kDefault = 48 * 1024;
  if (bytes > kDefault) simt::set_max_dynamic_smem(kernel, bytes);
}

}  // namespace minivlm::kernels::MINIVLM_KERNEL_BACKEND
