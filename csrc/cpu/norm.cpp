// RMSNorm and LayerNorm over the last dimension. Forward saves the per-row reciprocal standard
// deviation (and mean); backward uses the closed forms
//   RMSNorm:   dx = rstd · (w∘g − x̂ · mean(w∘g∘x̂)),                   dw = Σ_rows g∘x̂
//   LayerNorm: dx = rstd · (w∘g − mean(w∘g) − x̂ · mean(w∘g∘x̂)),       dw = Σ g∘x̂, db = Σ g
#include <cmath>

#include "cpu/backend.h"
#include "cpu/row_kernels.h"

namespace minivlm::cpu {

namespace {

int64_t rows_of(const Tensor& x) {
  const int64_t n = x.size(-1);
  return n == 0 ? 0 : x.numel() / n;
}

// dx and the per-row partial sums of dw, reduced afterwards in a fixed order (deterministic).
// `centered` selects LayerNorm; RMSNorm's saved mean is zero.
std::array<Tensor, 2> norm_backward(bool centered, const Tensor& dout, const Tensor& x,
                                    const Tensor& weight, const Backend::Norm& s) {
  const int64_t rows = rows_of(x), n = x.size(-1);
  Tensor dx = Tensor::empty(x.shape(), x.dtype());
  Tensor dw_rows = Tensor::empty({rows, n}, x.dtype());
  dispatch_float("norm", x, [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    const T* pw = weight.data<T>();
    const T* pg = dout.data<T>();
    const T* pr = s.rstd.data<T>();
    const T* pm = s.mean.data<T>();
    T* pd = dx.data<T>();
    T* pdw = dw_rows.data<T>();
#pragma omp parallel for if (rows > 8) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = px + r * n;
      const T* gr = pg + r * n;
      double mean_wg = 0, mean_wgx = 0;
#pragma omp simd reduction(+ : mean_wg, mean_wgx)
      for (int64_t i = 0; i < n; ++i) {
        const double xhat = (xr[i] - pm[r]) * pr[r];
        const double wg = static_cast<double>(pw[i]) * gr[i];
        mean_wg += wg;
        mean_wgx += wg * xhat;
        pdw[r * n + i] = static_cast<T>(gr[i] * xhat);
      }
      mean_wg /= static_cast<double>(n);
      mean_wgx /= static_cast<double>(n);
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const double xhat = (xr[i] - pm[r]) * pr[r];
        double d = static_cast<double>(pw[i]) * gr[i] - xhat * mean_wgx;
        if (centered) d -= mean_wg;
        pd[r * n + i] = static_cast<T>(pr[r] * d);
      }
    }
  });
  return {dx, dw_rows};
}

}  // namespace

Backend::Norm CpuBackend::rmsnorm_forward(const Tensor& x, const Tensor& weight, double eps) {
  const int64_t rows = rows_of(x), n = x.size(-1);
  Norm s{Tensor::empty(x.shape(), x.dtype()), Tensor::zeros({rows}, x.dtype()),
         Tensor::empty({rows}, x.dtype())};
  dispatch_float("rmsnorm", x, [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    const T* pw = weight.data<T>();
    T* po = s.out.data<T>();
    T* pr = s.rstd.data<T>();
#pragma omp parallel for if (rows > 8) schedule(static)
    for (int64_t r = 0; r < rows; ++r) pr[r] = rmsnorm_row(px + r * n, pw, n, eps, po + r * n);
  });
  return s;
}

std::array<Tensor, 2> CpuBackend::rmsnorm_backward(const Tensor& dout, const Tensor& x,
                                                   const Tensor& weight, const Norm& saved) {
  const auto [dx, dw_rows] = norm_backward(false, dout, x, weight, saved);
  return {dx, sum_dim(dw_rows, 0).reshape(weight.shape())};
}

Backend::Norm CpuBackend::layernorm_forward(const Tensor& x, const Tensor& weight,
                                            const Tensor& bias, double eps) {
  const int64_t rows = rows_of(x), n = x.size(-1);
  Norm s{Tensor::empty(x.shape(), x.dtype()), Tensor::empty({rows}, x.dtype()),
         Tensor::empty({rows}, x.dtype())};
  dispatch_float("layernorm", x, [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    const T* pw = weight.data<T>();
    const T* pb = bias.data<T>();
    T* po = s.out.data<T>();
    T* pr = s.rstd.data<T>();
    T* pm = s.mean.data<T>();
#pragma omp parallel for if (rows > 8) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = px + r * n;
      double mu = 0;
#pragma omp simd reduction(+ : mu)
      for (int64_t i = 0; i < n; ++i) mu += xr[i];
      mu /= static_cast<double>(n);
      double ss = 0;
#pragma omp simd reduction(+ : ss)
      for (int64_t i = 0; i < n; ++i) {
        const double d = xr[i] - mu;
        ss += d * d;
      }
      const T rstd = static_cast<T>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
      pr[r] = rstd;
      pm[r] = static_cast<T>(mu);
#pragma omp simd
      for (int64_t i = 0; i < n; ++i)
        po[r * n + i] = (xr[i] - static_cast<T>(mu)) * rstd * pw[i] + pb[i];
    }
  });
  return s;
}

std::array<Tensor, 3> CpuBackend::layernorm_backward(const Tensor& dout, const Tensor& x,
                                                     const Tensor& weight, const Norm& saved) {
  const auto [dx, dw_rows] = norm_backward(true, dout, x, weight, saved);
  const int64_t n = x.size(-1);
  return {dx, sum_dim(dw_rows, 0).reshape(weight.shape()),
          sum_dim(dout.reshape({rows_of(x), n}), 0).reshape(weight.shape())};
}

}  // namespace minivlm::cpu
