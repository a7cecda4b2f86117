// Launchers of the CUDA back-end's layout kernels (cuda/kernels/layout_launchers.inc): strided
// copies with storage-type conversion, row gathers and scatters, and SiLU. Declared once per
// back-end namespace like device_kernels.h; needs no CUDA compiler.
#pragma once
#include <cstdint>

#include "cuda/kernels/device_kernels.h"

#define MINIVLM_CUDA_KERNELS_NAMESPACE emu
#include "cuda/kernels/layout_launchers.inc"
#undef MINIVLM_CUDA_KERNELS_NAMESPACE

#define MINIVLM_CUDA_KERNELS_NAMESPACE gpu
#include "cuda/kernels/layout_launchers.inc"
#undef MINIVLM_CUDA_KERNELS_NAMESPACE
