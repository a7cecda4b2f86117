// The one header a kernel (.cuh) includes. nvcc sees CUDA itself; g++ sees the SIMT emulator,
// which gives the same names CPU semantics. Both sides offer simt::launch(),
// simt::set_max_dynamic_smem() and dynamic_smem<T>(), so kernels and their launchers are written
// once.
#pragma once

#ifdef __CUDACC__

#include <cstddef>
#include <utility>
#include <cuda_runtime.h>
#include <cuda_bf16.h>

template <typename T>
__device__ __forceinline__ T* dynamic_smem() {
  extern __shared__ __align__(16) unsigned char simt_dynamic_smem[];
  return reinterpret_cast<T*>(simt_dynamic_smem);
}

namespace simt {

template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem_bytes,
            cudaStream_t stream, Args&&... args) {
  kernel<<<grid, block, smem_bytes, stream>>>(std::forward<Args>(args)...);
}

template <typename... Params>
void set_max_dynamic_smem(void (*kernel)(Params...), std::size_t bytes) {
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(bytes));
}

}  // namespace simt

#else

#include "simt/simt.h"

#endif
