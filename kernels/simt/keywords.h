// CUDA's vocabulary for g++: CUDA's own host-capable type headers, then the keywords redefined.
//
// cuda_fp16.h, cuda_bf16.h and vector_types.h compile host-only with g++ and give __half,
// __nv_bfloat16 (with host arithmetic), dim3 and the vector types. Their keyword macros are then
// replaced: function-space qualifiers become nothing, and __shared__ becomes `static`. CUDA's
// headers define __shared__ as empty under g++, which would silently make every shared array a
// per-thread local; as `static`, one instance per kernel is exactly per-block storage because
// blocks run one at a time, and AddressSanitizer sees overflows of it.
#pragma once

#pragma GCC system_header
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <vector_types.h>
#include <vector_functions.h>
#include <driver_types.h>

#undef __global__
#undef __device__
#undef __host__
#undef __constant__
#undef __shared__
#undef __launch_bounds__
#undef __forceinline__
#define __global__
#define __device__
#define __host__
#define __constant__
#define __shared__ static
#define __launch_bounds__(...)
#define __forceinline__ inline

inline constexpr int warpSize = 32;
