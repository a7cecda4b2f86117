// Block barriers and warp operations, the only places where an emulated thread yields.
//
// Each call records its source line (std::source_location) so that the emulator can check that all
// threads of a barrier wait at the same line and name the lines in its errors. Warp operations
// follow PTX shfl.sync exactly: lanes form segments of `width`, a source lane outside the segment
// leaves the caller its own value, and a value read from a lane outside `mask` is undefined (the
// emulator returns all-ones bits). Every lane named in `mask` must exist, not have exited, and call
// the same operation with the same mask.
#pragma once

#include <cstdint>
#include <cstring>
#include <source_location>
#include <type_traits>

#include "keywords.h"

#include "context.h"

namespace simt::detail {

enum class WarpOp : std::uint8_t {
  shfl,
  shfl_up,
  shfl_down,
  shfl_xor,
  ballot,
  any,
  all,
  syncwarp,
  mma
};

int block_barrier(const char* name, int predicate, const std::source_location& where);
std::uint64_t warp_collective(WarpOp op, unsigned mask, std::uint64_t value, int lane_arg,
                              int width, const std::source_location& where);

// Shuffles move the bits of plain values of up to 8 bytes. CUDA's __half2 and __nv_bfloat162 have
// user-written copy assignments, so "plain" means trivially destructible here.
template <typename T>
concept shufflable = std::is_trivially_destructible_v<T> && sizeof(T) <= 8;

template <shufflable T>
std::uint64_t to_bits(const T& value) {
  std::uint64_t bits = 0;
  std::memcpy(&bits, static_cast<const void*>(&value), sizeof(T));
  return bits;
}

template <shufflable T>
T from_bits(std::uint64_t bits) {
  T value;
  std::memcpy(static_cast<void*>(&value), &bits, sizeof(T));
  return value;
}

// One lane's operands of a warp matrix multiply-accumulate (simt::mma_m16n8k16_bf16): pointers
// into the lane's own registers, read and written by the last lane to arrive.
struct MmaOperands {
  const std::uint32_t* a;  // 4 registers of A (16×16, two bf16 each)
  const std::uint32_t* b;  // 2 registers of B (16×8, two bf16 each)
  const float* c;          // 4 fp32 accumulators of C (16×8)
  float* d;                // 4 fp32 results of D = A·B + C (may be c)
};
void warp_mma(const MmaOperands& operands, const std::source_location& where);

template <typename T>
T shuffle(WarpOp op, unsigned mask, T var, int lane_arg, int width,
          const std::source_location& where) {
  return from_bits<T>(warp_collective(op, mask, to_bits(var), lane_arg, width, where));
}

}  // namespace simt::detail

inline void __syncthreads(std::source_location where = std::source_location::current()) {
  simt::detail::block_barrier("__syncthreads", 0, where);
}
inline int __syncthreads_count(int predicate,
                               std::source_location where = std::source_location::current()) {
  return simt::detail::block_barrier("__syncthreads_count", predicate, where);
}
inline int __syncthreads_and(int predicate,
                             std::source_location where = std::source_location::current()) {
  return simt::detail::block_barrier("__syncthreads_and", predicate, where) ==
         static_cast<int>(blockDim.x * blockDim.y * blockDim.z);
}
inline int __syncthreads_or(int predicate,
                            std::source_location where = std::source_location::current()) {
  return simt::detail::block_barrier("__syncthreads_or", predicate, where) != 0;
}

template <typename T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize,
              std::source_location where = std::source_location::current()) {
  return simt::detail::shuffle(simt::detail::WarpOp::shfl, mask, var, src_lane, width, where);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                 std::source_location where = std::source_location::current()) {
  return simt::detail::shuffle(simt::detail::WarpOp::shfl_up, mask, var, static_cast<int>(delta),
                               width, where);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                   std::source_location where = std::source_location::current()) {
  return simt::detail::shuffle(simt::detail::WarpOp::shfl_down, mask, var, static_cast<int>(delta),
                               width, where);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize,
                  std::source_location where = std::source_location::current()) {
  return simt::detail::shuffle(simt::detail::WarpOp::shfl_xor, mask, var, lane_mask, width, where);
}

inline unsigned __ballot_sync(unsigned mask, int predicate,
                              std::source_location where = std::source_location::current()) {
  return static_cast<unsigned>(simt::detail::warp_collective(simt::detail::WarpOp::ballot, mask,
                                                             predicate != 0, 0, warpSize, where));
}
inline int __any_sync(unsigned mask, int predicate,
                      std::source_location where = std::source_location::current()) {
  return static_cast<int>(simt::detail::warp_collective(simt::detail::WarpOp::any, mask,
                                                        predicate != 0, 0, warpSize, where));
}
inline int __all_sync(unsigned mask, int predicate,
                      std::source_location where = std::source_location::current()) {
  return static_cast<int>(simt::detail::warp_collective(simt::detail::WarpOp::all, mask,
                                                        predicate != 0, 0, warpSize, where));
}
namespace simt {

// Tensor-core matrix multiply-accumulate of one warp, PTX's mma.sync.aligned.m16n8k16.row.col
// .f32.bf16.bf16.f32: D (16×8, fp32) = A (16×16, bf16) · B (16×8, bf16) + C (16×8, fp32). Every
// lane of the warp calls it with its fragments, which hold the matrices in PTX's layout: with
// g = lane / 4 and t = lane % 4, register a[i] holds the pair of row g + 8·(i % 2), columns
// 2t + 8·(i / 2) + {0, 1} (low half first); b[i] the pair of rows 2t + 8·i + {0, 1}, column g;
// c[i] and d[i] the element of row g + 8·(i / 2), column 2t + i % 2. The products are exact and
// are summed in fp32 from C in k order (the hardware's order and rounding are its own, within
// fp32 rounding). The whole warp must take part (the emulator checks it, as for a full-mask
// shuffle).
inline void mma_m16n8k16_bf16(float (&d)[4], const std::uint32_t (&a)[4],
                              const std::uint32_t (&b)[2], const float (&c)[4],
                              std::source_location where = std::source_location::current()) {
  simt::detail::warp_mma({a, b, c, d}, where);
}

}  // namespace simt

inline void __syncwarp(unsigned mask = 0xffffffffu,
                       std::source_location where = std::source_location::current()) {
  simt::detail::warp_collective(simt::detail::WarpOp::syncwarp, mask, 0, 0, warpSize, where);
}
