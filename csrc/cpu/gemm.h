// Row-major GEMM on the CPU: C = alpha · op(A) · op(B) + beta · C (oneDNN for float products,
// CBLAS for double and for one-row or one-column products).
#pragma once
#include <cstdint>

namespace minivlm::cpu {

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

}  // namespace minivlm::cpu
