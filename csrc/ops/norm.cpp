// RMSNorm and LayerNorm over the last dimension, each one fused node. Forward saves the per-row
// reciprocal standard deviation (and mean); backward uses the closed forms
//   RMSNorm:   dx = rstd · (w∘g − x̂ · mean(w∘g∘x̂)),                   dw = Σ_rows g∘x̂
//   LayerNorm: dx = rstd · (w∘g − mean(w∘g) − x̂ · mean(w∘g∘x̂)),       dw = Σ g∘x̂, db = Σ g
#include <cmath>
#include <vector>

#include "autograd/node.h"
#include "cuda/ops.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace minivlm::ops {

using detail::check_cpu;
using detail::dispatch_float;

namespace {

struct NormSaved {
  Tensor x;     // [rows, n] contiguous input
  Tensor w;     // [n]
  Tensor mean;  // [rows] (LayerNorm only)
  Tensor rstd;  // [rows]
};

// Shared body of both norms. `centered` selects LayerNorm (subtract the mean, add bias).
Tensor norm_forward(const char* op, bool centered, const Tensor& x, const Tensor& weight,
                    const Tensor& bias, double eps, NormSaved& saved) {
  check_cpu(op, x);
  check_cpu(op, weight);
  detail::check_same_dtype(op, x, weight);
  MV_CHECK(x.dim() >= 1, op, ": input must have at least one dimension");
  const int64_t n = x.size(-1);
  detail::check_shape(op, "weight", weight, {n});
  if (bias.defined()) detail::check_shape(op, "bias", bias, {n});
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  saved.x = x.detach().contiguous().reshape({rows, n});
  saved.w = weight.detach().contiguous();
  saved.rstd = Tensor::empty({rows}, x.dtype());
  saved.mean = Tensor::zeros({rows}, x.dtype());
  const Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(op, x, [&](auto zero) {
    using T = decltype(zero);
    const T* px = saved.x.data<T>();
    const T* pw = saved.w.data<T>();
    const T* pb = bc.defined() ? bc.data<T>() : nullptr;
    T* po = out.data<T>();
    T* pr = saved.rstd.data<T>();
    T* pm = saved.mean.data<T>();
#pragma omp parallel for if (rows > 8) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = px + r * n;
      double mu = 0;
      if (centered) {
#pragma omp simd reduction(+ : mu)
        for (int64_t i = 0; i < n; ++i) mu += xr[i];
        mu /= static_cast<double>(n);
      }
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
      for (int64_t i = 0; i < n; ++i) {
        const T y = (xr[i] - static_cast<T>(mu)) * rstd * pw[i];
        po[r * n + i] = pb ? y + pb[i] : y;
      }
    }
  });
  return out;
}

std::vector<Tensor> norm_backward(const char* op, bool centered, bool has_bias, const NormSaved& s,
                                  const Tensor& g) {
  const int64_t rows = s.x.size(0), n = s.x.size(1);
  const Tensor gc = g.contiguous();
  Tensor dx = Tensor::empty(s.x.shape(), s.x.dtype());
  // Per-row partial sums for dw/db, reduced afterwards in a fixed order (deterministic).
  Tensor dw_rows = Tensor::empty({rows, n}, s.x.dtype());
  dispatch_float(op, s.x, [&](auto zero) {
    using T = decltype(zero);
    const T* px = s.x.data<T>();
    const T* pw = s.w.data<T>();
    const T* pg = gc.data<T>();
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
  std::vector<Tensor> grads{dx.reshape(g.shape()), sum(dw_rows, 0, false)};
  if (has_bias) grads.push_back(sum(gc.reshape({rows, n}), 0, false));
  return grads;
}

}  // namespace

Tensor rmsnorm(const Tensor& x, const Tensor& weight, double eps) {
  if (x.device().is_cuda_backend()) return cuda::rmsnorm(x, weight, eps);
  NormSaved saved;
  Tensor out = norm_forward("rmsnorm", false, x, weight, Tensor(), eps, saved);
  return record(out, "rmsnorm", {x, weight}, [saved](const Tensor& g) {
    return norm_backward("rmsnorm", false, false, saved, g);
  });
}

Tensor layernorm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  if (x.device().is_cuda_backend()) return cuda::layernorm(x, weight, bias, eps);
  MV_CHECK(bias.defined(), "layernorm: bias is required");
  NormSaved saved;
  Tensor out = norm_forward("layernorm", true, x, weight, bias, eps, saved);
  return record(out, "layernorm", {x, weight, bias}, [saved](const Tensor& g) {
    return norm_backward("layernorm", true, true, saved, g);
  });
}

}  // namespace minivlm::ops
