// Row-major GEMM of bf16 matrices on the CPU: C = op(A) · op(B), products summed in fp32 and C
// rounded to bf16 once, as cuBLAS's bf16 GEMM with fp32 compute does. Two paths, chosen at run
// time from the CPU:
//   onednn:  oneDNN's bf16 matmul primitive on the bf16 operands as they are (strided views, no
//            copies), one primitive per shape and layout, cached; where the CPU has AVX512-BF16
//            or AMX-BF16, the instructions that multiply bf16 pairs into fp32 sums;
//   widened: elsewhere (AVX2, where oneDNN only has reference code for bf16) the operands are
//            widened to fp32 and multiplied by the fp32 GEMM (cpu/gemm.h).
#pragma once
#include <cstdint>
#include <string>

namespace minivlm::cpu {

enum class Bf16GemmPath : uint8_t { onednn, widened };

// A stored [m, k] (ta: [k, m]) with leading dimension lda, B stored [k, n] (tb: [n, k]) with ldb,
// C [m, n] with ldc; all bf16 bit patterns.
void gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const uint16_t* a, int64_t lda,
               const uint16_t* b, int64_t ldb, uint16_t* c, int64_t ldc);

// The path gemm_bf16 takes, and a line naming it and why (`minivlm info`).
Bf16GemmPath bf16_gemm_path();
std::string bf16_gemm_description();

// Whether oneDNN has a bf16 matmul here at all (reference code included) and, when it does, the
// name of its implementation for a small product ("brg:avx512_core_amx", "ref:any", ...).
bool onednn_bf16_matmul_exists(std::string* impl = nullptr);

// Tests: takes `path` from now on (onednn only where onednn_bf16_matmul_exists()); returns the
// path taken before.
Bf16GemmPath set_bf16_gemm_path(Bf16GemmPath path);

}  // namespace minivlm::cpu
