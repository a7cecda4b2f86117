// The CUDA back-end's own kernel launchers (cuda/kernels/launchers.inc), for the emulator
// (namespace emu, built by g++ in every build) and the GPU (namespace gpu). Needs no CUDA compiler.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace minivlm::cuda::kern {

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

enum class BinaryOp : int { add, sub, mul };

}  // namespace minivlm::cuda::kern

#define MINIVLM_CUDA_KERNELS_NAMESPACE emu
#include "cuda/kernels/launchers.inc"
#undef MINIVLM_CUDA_KERNELS_NAMESPACE

#define MINIVLM_CUDA_KERNELS_NAMESPACE gpu
#include "cuda/kernels/launchers.inc"
#undef MINIVLM_CUDA_KERNELS_NAMESPACE
