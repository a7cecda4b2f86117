// Matrix-vector products for decoding one token per row: y[m, n] = x[m, :] · w[n, :] over a range
// of output rows [n0, n1), so that the threads of one parallel region split a weight matrix by rows
// and together read every weight exactly once per token (decode is bound by those bytes). The
// weight is row-major [N, K] (rows contiguous, as nn.Linear stores it); x holds M rows of K.
//
// bf16 weights halve the bytes. Their products run on vdpbf16ps (pairs of bf16 products summed in
// fp32) where the CPU has AVX512-BF16, checked at run time; elsewhere a portable loop widens both
// operands to fp32. x is rounded to bf16 for these products (to_bf16).
#pragma once
#include <cstdint>

namespace minivlm::cpu {

// accumulate: y += x·wᵀ (a fused residual add) instead of y = x·wᵀ.
void gemv_rows(const float* w, int64_t k, const float* x, int64_t m, float* y, int64_t ldy,
               int64_t n0, int64_t n1, bool accumulate);
void gemv_rows(const uint16_t* w, int64_t k, const uint16_t* x, int64_t m, float* y, int64_t ldy,
               int64_t n0, int64_t n1, bool accumulate);

// Round-to-nearest-even fp32 → bf16 of n values.
void to_bf16(const float* x, uint16_t* y, int64_t n);

// Whether gemv_rows on bf16 runs on AVX512-BF16 instructions on this CPU.
bool has_avx512_bf16();

// The portable bf16 loop gemv_rows falls back to without AVX512-BF16 (exposed for its test).
void gemv_rows_portable(const uint16_t* w, int64_t k, const uint16_t* x, int64_t m, float* y,
                        int64_t ldy, int64_t n0, int64_t n1, bool accumulate);

}  // namespace minivlm::cpu
