// What every family's declaration header (kernels/<family>.h) needs: the storage types, the
// stream type and MINIVLM_KERNEL_LAUNCHERS, which declares a family's launchers for both builds of
// the kernels. Needs no CUDA compiler.
//
// The same kernels are built twice: by nvcc for the GPU (library minivlm_kernels_cuda, namespace
// minivlm::kernels::gpu) and by g++ for the SIMT emulator (library minivlm_kernels_emu, namespace
// minivlm::kernels::emu). MINIVLM_KERNEL_LAUNCHERS(declarations) writes the declarations once in
// each namespace, so the two have the same signatures and host code picks a back-end by namespace
// alone. Each launcher template is defined in its kernels/<family>.cuh and instantiated there for
// float and bf16 storage. Family headers keep clang-format off around the macro's argument, which
// it would otherwise indent and join as one expression; the declarations inside are laid out as
// clang-format lays out ordinary ones.
//
// Conventions: T is the storage type (float or bf16); arithmetic, statistics, accumulators and
// optimizer state are fp32. Outputs come first, then scratch, then the incoming gradient, then
// saved inputs. Gradients are written, not accumulated. Unless said otherwise an output may not
// alias an input. block_size must be a multiple of 32 in [32, 1024]; a bad shape or block size
// throws std::invalid_argument before anything is launched. Launches are asynchronous on `stream`.
// Shapes: N rows, C columns (channels), V vocabulary, B batch, S tokens of an image grid.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_bf16.h>
#include <driver_types.h>

namespace minivlm::kernels {

using bf16 = __nv_bfloat16;

}  // namespace minivlm::kernels

#define MINIVLM_KERNEL_LAUNCHERS(...)     \
  namespace minivlm::kernels::emu {       \
  __VA_ARGS__                             \
  } /* namespace minivlm::kernels::emu */ \
  namespace minivlm::kernels::gpu {       \
  __VA_ARGS__                             \
  } /* namespace minivlm::kernels::gpu */
