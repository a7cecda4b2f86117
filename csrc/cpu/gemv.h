// Matrix-vector products for decoding one token per row: y[m, n] = x[m, :] · w[n, :] over a range
// of output rows [n0, n1), so that the threads of one parallel region split a weight matrix by rows
// and together read every weight exactly once per token (decode is bound by those bytes). The
// weight is row-major [N, K] (rows contiguous, as nn.Linear stores it); x holds M rows of K.
//
// bf16 weights halve the bytes; x is rounded to bf16 for their products (cpu/bf16.h's
// f32_to_bf16). int8 weights quarter them: one scale per row, w[n, :] ≈ w_scale[n] · q[n, :], and
// the inputs quantized per row to unsigned 8 bits around 128, x[m, :] ≈ x_scale[m] · (xq[m, :] −
// 128); w_sum[n] = Σ_k q[n, k] takes the 128 back out exactly in integers where a kernel multiplies
// the raw bytes.
//
// Each product has up to three loops (GemvKernel), the best one this CPU has chosen at run time:
//   avx512    bf16: vdpbf16ps (AVX512-BF16); i8: vpdpbusd, 64 products per instruction
//             (AVX512-VNNI); none for f32
//   avx2      AVX2 + FMA: eight independent fp32 sums per tile of four rows (bf16 widened
//             exactly to fp32); i8 widened to int16 and summed exactly by vpmaddwd
//   portable  plain loops for the compiler to vectorize
// The i8 kernels give identical sums; the float ones differ only in summation order. The
// environment variable MINIVLM_GEMV_KERNEL=portable|avx2 caps the choice.
#pragma once
#include <cstdint>
#include <optional>

namespace minivlm::cpu {

enum class GemvKernel : uint8_t { portable, avx2, avx512 };
enum class GemvWeights : uint8_t { f32, bf16, i8 };
// Whether this CPU runs `kernel` for `weights`; the best one it runs; its name.
bool gemv_kernel_runs(GemvKernel kernel, GemvWeights weights);
GemvKernel gemv_kernel(GemvWeights weights);
const char* gemv_kernel_name(GemvKernel kernel);

// accumulate: y += x·wᵀ (a fused residual add) instead of y = x·wᵀ. `kernel` (default: the best
// this CPU runs) must be one that runs here.
void gemv_rows(const float* w, int64_t k, const float* x, int64_t m, float* y, int64_t ldy,
               int64_t n0, int64_t n1, bool accumulate,
               std::optional<GemvKernel> kernel = std::nullopt);
void gemv_rows(const uint16_t* w, int64_t k, const uint16_t* x, int64_t m, float* y, int64_t ldy,
               int64_t n0, int64_t n1, bool accumulate,
               std::optional<GemvKernel> kernel = std::nullopt);

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
               int64_t n0, int64_t n1, bool accumulate,
               std::optional<GemvKernel> kernel = std::nullopt);

// Symmetric per-row int8 of n rows of k values (scale = max|row| / 127; q_sum as above).
void quantize_rows_i8(const float* w, int64_t n, int64_t k, int8_t* q, float* scale,
                      int32_t* q_sum);
// One row of k values to unsigned 8 bits around 128; returns its scale (max|x| / 127).
float quantize_u8(const float* x, int64_t k, uint8_t* q);

}  // namespace minivlm::cpu
