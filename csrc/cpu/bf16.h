// bf16 ↔ f32 conversion of host arrays for the CPU back-end's bf16 path (cpu/bf16_backend.h):
// vectorised, the instruction set chosen at run time (AVX-512-BF16's vcvtne2ps2bf16, AVX2, or
// plain C++), every path giving the bits of core/dtype.h's f32_to_bf16 / bf16_to_f32
// (round-to-nearest-even, NaN kept quiet, subnormals kept).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace minivlm::cpu {

// dst[i] = bf16_to_f32(src[i]) for i < n.
void bf16_to_f32(const uint16_t* src, float* dst, int64_t n);
// dst[i] = f32_to_bf16(src[i]) for i < n.
void f32_to_bf16(const float* src, uint16_t* dst, int64_t n);

// The conversion kernels in use: "avx512-bf16", "avx2" or "portable".
const char* bf16_convert_path();

// A contiguous f32 copy of the bf16 tensor t (split across the threads for large ones); an f32
// or f64 tensor comes back as it is.
Tensor widen_bf16(const Tensor& t);
// A contiguous bf16 copy of the f32 tensor t, each value rounded to nearest even.
Tensor round_to_bf16(const Tensor& t);

}  // namespace minivlm::cpu
