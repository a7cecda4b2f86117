// The one header a kernel (.cuh) includes. nvcc sees CUDA itself; g++ sees the SIMT emulator,
// which gives the same names CPU semantics. Both sides offer simt::launch(),
// simt::set_max_dynamic_smem(), dynamic_smem<T>() and the warp's tensor-core multiply
// simt::mma_m16n8k16_bf16() (its fragment layout: kernels/simt/collectives.h), so kernels and their
// launchers are written once. The PTX of that multiply here is the one inline assembly a kernel
// reaches.
#pragma once

#ifdef __CUDACC__

#include <cstddef>
#include <cstdint>
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

// D = A·B + C for one warp (m16n8k16, bf16 inputs, fp32 accumulators), sm_80 and later.
__device__ __forceinline__ void mma_m16n8k16_bf16(float (&d)[4], const std::uint32_t (&a)[4],
                                                  const std::uint32_t (&b)[2],
                                                  const float (&c)[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
#else
  __trap();
#endif
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
