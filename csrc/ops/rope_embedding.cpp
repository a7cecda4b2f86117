// Rotary position embedding (half-split) and token embedding.
#include <omp.h>

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

// Rotates every head of x [B, T, nh, hd] by +angle (sign = 1) or −angle (sign = −1, the backward:
// the transpose of a rotation is the rotation by the opposite angle). The cos/sin table is built
// once per call for the T positions and shared by every batch row and head.
Tensor rope_rotate(const Tensor& x, double theta, int64_t start_pos, double sign) {
  const Tensor xc = x.contiguous();
  const int64_t B = x.size(0), T = x.size(1), nh = x.size(2), hd = x.size(3), half = hd / 2;
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float("rope", x, [&](auto zero) {
    using T_ = decltype(zero);
    std::vector<T_> cs(static_cast<size_t>(T * half)), sn(static_cast<size_t>(T * half));
    std::vector<double> inv_freq(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i)
      inv_freq[i] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
#pragma omp parallel for if (T * half > 4096) schedule(static)
    for (int64_t t = 0; t < T; ++t) {
      const double pos = static_cast<double>(start_pos + t);
      for (int64_t i = 0; i < half; ++i) {
        cs[t * half + i] = static_cast<T_>(std::cos(pos * inv_freq[i]));
        sn[t * half + i] = static_cast<T_>(sign * std::sin(pos * inv_freq[i]));
      }
    }
    const T_* px = xc.data<T_>();
    T_* po = out.data<T_>();
#pragma omp parallel for if (B * T > 4) schedule(static)
    for (int64_t bt = 0; bt < B * T; ++bt) {
      const T_* c = cs.data() + (bt % T) * half;
      const T_* s = sn.data() + (bt % T) * half;
      for (int64_t h = 0; h < nh; ++h) {
        const T_* xr = px + (bt * nh + h) * hd;
        T_* yr = po + (bt * nh + h) * hd;
#pragma omp simd
        for (int64_t i = 0; i < half; ++i) {
          const T_ a = xr[i], b = xr[i + half];
          yr[i] = a * c[i] - b * s[i];
          yr[i + half] = b * c[i] + a * s[i];
        }
      }
    }
  });
  return out;
}

}  // namespace

Tensor rope(const Tensor& x, double theta, int64_t start_pos) {
  if (x.device().is_cuda_backend()) return cuda::rope(x, theta, start_pos);
  check_cpu("rope", x);
  MV_CHECK(x.dim() == 4, "rope: expected [B, T, heads, head_dim], got ", x.desc());
  MV_CHECK(x.size(3) % 2 == 0, "rope: head_dim must be even, got ", x.size(3));
  Tensor out = rope_rotate(x, theta, start_pos, 1.0);
  return record(out, "rope", {x}, [theta, start_pos](const Tensor& g) {
    return std::vector<Tensor>{rope_rotate(g, theta, start_pos, -1.0)};
  });
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  if (weight.device().is_cuda_backend()) return cuda::embedding(weight, ids);
  check_cpu("embedding", weight);
  check_cpu("embedding", ids);
  MV_CHECK(weight.dim() == 2, "embedding: weight must be [vocab, hidden], got ", weight.desc());
  MV_CHECK(ids.dtype() == DType::i32 || ids.dtype() == DType::i64,
           "embedding: ids must be i32 or i64, got ", ids.desc());
  const int64_t V = weight.size(0), H = weight.size(1);
  const std::vector<int64_t> idv = ids.to_int_vector();
  for (size_t i = 0; i < idv.size(); ++i)
    MV_CHECK(idv[i] >= 0 && idv[i] < V, "embedding: token id ", idv[i], " at position ", i,
             " is outside the vocabulary [0, ", V, ")");
  Shape out_shape = ids.shape();
  out_shape.push_back(H);
  const Tensor wc = weight.contiguous();
  Tensor out = Tensor::empty(out_shape, weight.dtype());
  const int64_t n = static_cast<int64_t>(idv.size());
  dispatch_float("embedding", weight, [&](auto zero) {
    using T = decltype(zero);
    const T* pw = wc.data<T>();
    T* po = out.data<T>();
#pragma omp parallel for if (n > 64) schedule(static)
    for (int64_t i = 0; i < n; ++i) std::copy_n(pw + idv[i] * H, H, po + i * H);
  });
  const DType dt = weight.dtype();
  return record(out, "embedding", {weight, ids}, [idv, V, H, dt](const Tensor& g) {
    const Tensor gc = g.contiguous();
    Tensor dw = Tensor::zeros({V, H}, dt);
    const int64_t n = static_cast<int64_t>(idv.size());
    dispatch_float("embedding", dw, [&](auto zero) {
      using T = decltype(zero);
      const T* pg = gc.data<T>();
      T* pd = dw.data<T>();
      // Threads own column ranges and visit tokens in order: deterministic, no atomics.
#pragma omp parallel
      {
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        const int64_t c0 = H * t / nt, c1 = H * (t + 1) / nt;
        for (int64_t i = 0; i < n; ++i) {
          const T* gr = pg + i * H;
          T* dr = pd + idv[i] * H;
          for (int64_t c = c0; c < c1; ++c) dr[c] += gr[c];
        }
      }
    });
    return std::vector<Tensor>{dw, Tensor()};
  });
}

}  // namespace minivlm::ops
