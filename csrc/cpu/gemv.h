// Matrix-vector products for decoding one token per row: y[m, n] = x[m, :] · w[n, :] over a range
// of output rows [n0, n1), so that the threads of one parallel region split a weight matrix by rows
// and together read every weight exactly once per token (decode is bound by those bytes). The
// weight is row-major [N, K] (rows contiguous, as nn.Linear stores it); x holds M rows of K.
//
// bf16 weights halve the bytes. Their products run on vdpbf16ps (pairs of bf16 products summed in
// fp32) where the CPU has AVX512-BF16, checked at run time; elsewhere a portable loop widens both
// operands to fp32. x is rounded to bf16 for these products (to_bf16).
//
// int8 weights quarter the bytes: one scale per row, w[n, :] ≈ w_scale[n] · q[n, :]. The inputs
// are quantized per row to unsigned 8 bits around 128, x[m, :] ≈ x_scale[m] · (xq[m, :] − 128),
// so that 64 products are one vpdpbusd where the CPU has AVX512-VNNI; w_sum[n] = Σ_k q[n, k]
// takes the 128 back out exactly in integers.
#pragma once
#include <cstdint>

namespace minivlm::cpu {

// accumulate: y += x·wᵀ (a fused residual add) instead of y = x·wᵀ.
void gemv_rows(const float* w, int64_t k, const float* x, int64_t m, float* y, int64_t ldy,
               int64_t n0, int64_t n1, bool accumulate);
void gemv_rows(const uint16_t* w, int64_t k, const uint16_t* x, int64_t m, float* y, int64_t ldy,
               int64_t n0, int64_t n1, bool accumulate);

struct I8Rows {
  const int8_t* q;       // [N, K]
  const float* scale;    // [N]
  const int32_t* q_sum;  // [N]
};
struct U8Rows {
  const uint8_t* q;    // [M, K]
  const float* scale;  // [M]
};
void gemv_rows(const I8Rows& w, int64_t k, const U8Rows& x, int64_t m, float* y, int64_t ldy,
               int64_t n0, int64_t n1, bool accumulate);

// Symmetric per-row int8 of n rows of k values (scale = max|row| / 127; q_sum as above).
void quantize_rows_i8(const float* w, int64_t n, int64_t k, int8_t* q, float* scale,
                      int32_t* q_sum);
// One row of k values to unsigned 8 bits around 128; returns its scale (max|x| / 127).
float quantize_u8(const float* x, int64_t k, uint8_t* q);

// Round-to-nearest-even fp32 → bf16 of n values.
void to_bf16(const float* x, uint16_t* y, int64_t n);

// Whether gemv_rows on bf16 runs on AVX512-BF16 instructions on this CPU.
bool has_avx512_bf16();

// Whether gemv_rows on int8 runs on AVX512-VNNI instructions on this CPU.
bool has_avx512_vnni();

// The portable loops gemv_rows falls back to without those instructions (exposed for their test).
void gemv_rows_portable(const uint16_t* w, int64_t k, const uint16_t* x, int64_t m, float* y,
                        int64_t ldy, int64_t n0, int64_t n1, bool accumulate);
void gemv_rows_portable(const I8Rows& w, int64_t k, const U8Rows& x, int64_t m, float* y,
                        int64_t ldy, int64_t n0, int64_t n1, bool accumulate);

}  // namespace minivlm::cpu
