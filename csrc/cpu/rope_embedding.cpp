// Rotary position embedding (half-split), token embedding and index lists.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/backend.h"
#include "cpu/row_kernels.h"

namespace minivlm::cpu {

// Rotates every head of x [B, T, nh, hd] by +angle, or −angle for the inverse. The cos/sin table
// is built once per call for the positions in use — start_pos.., or 0..max(positions) — and
// shared by every batch row and head.
Tensor CpuBackend::rope(const Tensor& x, double theta, int64_t start_pos, const Tensor& positions,
                        bool inverse) {
  const int64_t B = x.size(0), T = x.size(1), nh = x.size(2), hd = x.size(3), half = hd / 2;
  const double sign = inverse ? -1.0 : 1.0;
  const int64_t* pos_of = positions.defined() ? positions.data<int64_t>() : nullptr;
  int64_t table = T;  // rows of the cos/sin table
  if (pos_of != nullptr) {
    table = 0;
    for (int64_t i = 0; i < B * T; ++i) table = std::max(table, pos_of[i] + 1);
    start_pos = 0;
  }
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float("rope", x, [&](auto zero) {
    using T_ = decltype(zero);
    std::vector<T_> cs(static_cast<size_t>(table * half)), sn(static_cast<size_t>(table * half));
    std::vector<double> inv_freq(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i)
      inv_freq[i] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
#pragma omp parallel for if (table * half > 4096) schedule(static)
    for (int64_t t = 0; t < table; ++t) {
      const double pos = static_cast<double>(start_pos + t);
      for (int64_t i = 0; i < half; ++i) {
        cs[t * half + i] = static_cast<T_>(std::cos(pos * inv_freq[i]));
        sn[t * half + i] = static_cast<T_>(sign * std::sin(pos * inv_freq[i]));
      }
    }
    const T_* px = x.data<T_>();
    T_* po = out.data<T_>();
#pragma omp parallel for if (B * T > 4) schedule(static)
    for (int64_t bt = 0; bt < B * T; ++bt) {
      const int64_t row = pos_of != nullptr ? pos_of[bt] : bt % T;
      const T_* c = cs.data() + row * half;
      const T_* s = sn.data() + row * half;
      for (int64_t h = 0; h < nh; ++h)
        rope_row(px + (bt * nh + h) * hd, c, s, half, po + (bt * nh + h) * hd);
    }
  });
  return out;
}

Tensor CpuBackend::indices(const std::vector<int64_t>& values, Device) {
  return Tensor::from_vector(values, {static_cast<int64_t>(values.size())});
}

Tensor CpuBackend::embedding_forward(const Tensor& weight, const Tensor& ids) {
  const int64_t H = weight.size(1), n = ids.numel();
  const int64_t* id = ids.data<int64_t>();
  Tensor out = Tensor::empty({n, H}, weight.dtype());
  dispatch_float("embedding", weight, [&](auto zero) {
    using T = decltype(zero);
    const T* pw = weight.data<T>();
    T* po = out.data<T>();
#pragma omp parallel for if (n > 64) schedule(static)
    for (int64_t i = 0; i < n; ++i) std::copy_n(pw + id[i] * H, H, po + i * H);
  });
  return out;
}

Tensor CpuBackend::embedding_backward(const Tensor& dout, const Tensor& ids, int64_t vocab) {
  const int64_t H = dout.size(1), n = ids.numel();
  const int64_t* id = ids.data<int64_t>();
  Tensor dw = Tensor::zeros({vocab, H}, dout.dtype());
  dispatch_float("embedding", dw, [&](auto zero) {
    using T = decltype(zero);
    const T* pg = dout.data<T>();
    T* pd = dw.data<T>();
    // Threads own column ranges and visit tokens in order: deterministic, no atomics.
#pragma omp parallel
    {
      const int nt = omp_get_num_threads(), t = omp_get_thread_num();
      const int64_t c0 = H * t / nt, c1 = H * (t + 1) / nt;
      for (int64_t i = 0; i < n; ++i) {
        const T* gr = pg + i * H;
        T* dr = pd + id[i] * H;
        for (int64_t c = c0; c < c1; ++c) dr[c] += gr[c];
      }
    }
  });
  return dw;
}

}  // namespace minivlm::cpu
