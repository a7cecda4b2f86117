#include "cpu/gemm.h"

#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include "core/error.h"

namespace minivlm::cpu {

namespace {

// CBLAS's gemv for one element type.
template <typename T>
struct Blas;
template <>
struct Blas<float> {
  static constexpr auto gemv = cblas_sgemv;
};
template <>
struct Blas<double> {
  static constexpr auto gemv = cblas_dgemv;
};

CBLAS_TRANSPOSE op(bool trans) { return trans ? CblasTrans : CblasNoTrans; }

// Products of two matrices: float through oneDNN, double through CBLAS. oneDNN picks its kernels
// from the CPU's instruction sets (AVX-512 where present); OpenBLAS's choice can be pinned by the
// environment (OPENBLAS_CORETYPE), which on an AVX-512 CPU halves the float GEMM rate.
void gemm_mm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
             int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const dnnl_status_t st =
      dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  MV_CHECK(st == dnnl_success, "gemm: dnnl_sgemm failed (status ", static_cast<int>(st),
           ") for m=", m, " n=", n, " k=", k, " lda=", lda, " ldb=", ldb, " ldc=", ldc);
}

void gemm_mm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
             int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, op(ta), op(tb), static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

}  // namespace

// A product with one row or one column (every decode step: x·Wᵀ for a single token) goes to gemv,
// which streams the matrix once; gemm would first copy it into packed panels, tripling the memory
// traffic of what is a bandwidth-bound operation.
template <typename T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // C = beta · C, as BLAS defines it (oneDNN leaves C as it is for some layouts)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
    return;
  }
  const int M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(k);
  if (m == 1) {
    // c[1, n] = a[1, k] · op(B): B stored [n, k] (tb) or [k, n].
    const int inca = ta ? static_cast<int>(lda) : 1;
    if (tb)
      Blas<T>::gemv(CblasRowMajor, CblasNoTrans, N, K, alpha, b, static_cast<int>(ldb), a, inca,
                    beta, c, 1);
    else
      Blas<T>::gemv(CblasRowMajor, CblasTrans, K, N, alpha, b, static_cast<int>(ldb), a, inca, beta,
                    c, 1);
    return;
  }
  if (n == 1) {
    // c[m, 1] = op(A) · b[k, 1]: A stored [m, k] or [k, m] (ta).
    const int incb = tb ? 1 : static_cast<int>(ldb);
    Blas<T>::gemv(CblasRowMajor, op(ta), ta ? K : M, ta ? M : K, alpha, a, static_cast<int>(lda), b,
                  incb, beta, c, static_cast<int>(ldc));
    return;
  }
  gemm_mm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);

}  // namespace minivlm::cpu
