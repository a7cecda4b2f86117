#include "cpu/gemm.h"

#include <cblas.h>

namespace minivlm::cpu {

namespace {

// CBLAS's gemm and gemv for one element type.
template <typename T>
struct Blas;
template <>
struct Blas<float> {
  static constexpr auto gemm = cblas_sgemm;
  static constexpr auto gemv = cblas_sgemv;
};
template <>
struct Blas<double> {
  static constexpr auto gemm = cblas_dgemm;
  static constexpr auto gemv = cblas_dgemv;
};

CBLAS_TRANSPOSE op(bool trans) { return trans ? CblasTrans : CblasNoTrans; }

}  // namespace

// A product with one row or one column (every decode step: x·Wᵀ for a single token) goes to gemv,
// which streams the matrix once; gemm would first copy it into packed panels, tripling the memory
// traffic of what is a bandwidth-bound operation.
template <typename T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  const int M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(k);
  if (m == 1 && k > 0) {
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
  if (n == 1 && k > 0) {
    // c[m, 1] = op(A) · b[k, 1]: A stored [m, k] or [k, m] (ta).
    const int incb = tb ? 1 : static_cast<int>(ldb);
    Blas<T>::gemv(CblasRowMajor, op(ta), ta ? K : M, ta ? M : K, alpha, a, static_cast<int>(lda), b,
                  incb, beta, c, static_cast<int>(ldc));
    return;
  }
  Blas<T>::gemm(CblasRowMajor, op(ta), op(tb), M, N, K, alpha, a, static_cast<int>(lda), b,
                static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);

}  // namespace minivlm::cpu
