// The optimizer's CPU side: the global gradient norm and the AdamW update (fp32 parameters).
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/backend.h"

namespace minivlm::cpu {

double CpuBackend::grad_norm(const std::vector<Tensor>& grads) {
  // Fixed-size chunks summed in order: the same bits for every thread count and run, which
  // bit-exact resume relies on (the norm feeds the clipping factor).
  constexpr int64_t kChunk = 1 << 14;
  double ss = 0;
  for (const Tensor& g : grads) {
    const Tensor gc = g.to(DType::f32).contiguous();
    const float* d = gc.data<float>();
    const int64_t n = gc.numel(), chunks = (n + kChunk - 1) / kChunk;
    std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for if (chunks > 1) schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      double s = 0;
      for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i)
        s += static_cast<double>(d[i]) * d[i];
      partial[static_cast<size_t>(c)] = s;
    }
    for (double s : partial) ss += s;
  }
  return std::sqrt(ss);
}

void CpuBackend::adamw_update(std::span<const AdamWSlot> slots, const AdamWHyper& h) {
  const double bc1 = 1.0 - std::pow(h.beta1, static_cast<double>(h.step));
  const double bc2 = 1.0 - std::pow(h.beta2, static_cast<double>(h.step));
  const float b1 = static_cast<float>(h.beta1), b2 = static_cast<float>(h.beta2);
  const float decay = static_cast<float>(1.0 - h.lr * h.weight_decay);
  const float step_size = static_cast<float>(h.lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  const float eps = static_cast<float>(h.eps);
  const float gs =
      static_cast<float>(h.grad_scale);  // × 1 is exact: unscaled steps keep their bits
  for (const AdamWSlot& s : slots) {
    MV_CHECK(s.param.dtype() == DType::f32 && !s.master.defined(), "adamw: the CPU back-end ",
             "updates f32 parameters, got ", s.param.desc());
    const Tensor gc = s.grad.to(DType::f32).contiguous();
    float* p = s.param.data<float>();
    float* m = s.m.data<float>();
    float* v = s.v.data<float>();
    const float* gp = gc.data<float>();
    const int64_t n = s.param.numel();
#pragma omp parallel for if (n > 65536) schedule(static)
    for (int64_t j = 0; j < n; ++j) {
      const float gj = gp[j] * gs;
      p[j] *= decay;
      m[j] = b1 * m[j] + (1 - b1) * gj;
      v[j] = b2 * v[j] + (1 - b2) * gj * gj;
      p[j] -= step_size * m[j] / (std::sqrt(v[j]) * inv_sqrt_bc2 + eps);
    }
  }
}

}  // namespace minivlm::cpu
