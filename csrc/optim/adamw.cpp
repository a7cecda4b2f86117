#include "optim/adamw.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda/ops.h"

namespace minivlm {

AdamW::AdamW(ParamList params, AdamWConfig config) : params_(std::move(params)), c_(config) {
  for (const NamedTensor& p : params_) {
    MV_CHECK(
        p.tensor.dtype() == DType::f32 && p.tensor.device().is_cpu() && p.tensor.is_contiguous(),
        "AdamW: parameter ", p.name, " must be a contiguous f32 CPU tensor, got ", p.tensor.desc());
    m_.push_back(Tensor::zeros(p.tensor.shape()));
    v_.push_back(Tensor::zeros(p.tensor.shape()));
  }
}

void AdamW::to(Device device, DType dtype) {
  MV_CHECK(dtype == DType::f32 || dtype == DType::bf16, "AdamW: parameters are stored as f32 or ",
           "bf16, not ", dtype_name(dtype));
  master_.resize(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i].tensor;
    const Tensor fp32 = master(i).detach().to(device);
    master_[i] = dtype == DType::f32 ? Tensor() : fp32;
    p.set_data(dtype == DType::f32 ? fp32 : fp32.to(dtype));
    m_[i] = m_[i].to(device);
    v_[i] = v_[i].to(device);
  }
}

Tensor AdamW::master(size_t i) const {
  return i < master_.size() && master_[i].defined() ? master_[i] : params_[i].tensor;
}

void AdamW::step(double lr, double grad_scale) {
  ++t_;
  if (!params_.empty() && params_[0].tensor.device().is_cuda_backend()) {
    const Device dev = params_[0].tensor.device();
    const Tensor scale =
        grad_scale == 1.0
            ? Tensor()
            : Tensor::from_vector(std::vector<float>{static_cast<float>(grad_scale)}, {1}).to(dev);
    const cuda::AdamWStep s{lr, c_.beta1, c_.beta2, c_.eps, c_.weight_decay, static_cast<long>(t_)};
    for (size_t i = 0; i < params_.size(); ++i) {
      const Tensor g = params_[i].tensor.grad();
      if (!g.defined()) continue;
      const Tensor mw = i < master_.size() ? master_[i] : Tensor();
      cuda::adamw_update(params_[i].tensor, mw, g, m_[i], v_[i], s, scale);
    }
    return;
  }
  const double bc1 = 1.0 - std::pow(c_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(c_.beta2, static_cast<double>(t_));
  const float b1 = static_cast<float>(c_.beta1), b2 = static_cast<float>(c_.beta2);
  const float decay = static_cast<float>(1.0 - lr * c_.weight_decay);
  const float step_size = static_cast<float>(lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  const float eps = static_cast<float>(c_.eps);
  const float gs = static_cast<float>(grad_scale);  // × 1 is exact: unscaled steps keep their bits
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor g = params_[i].tensor.grad();
    if (!g.defined()) continue;
    const Tensor gc = g.to(DType::f32).contiguous();
    float* p = params_[i].tensor.data<float>();
    float* m = m_[i].data<float>();
    float* v = v_[i].data<float>();
    const float* gp = gc.data<float>();
    const int64_t n = params_[i].tensor.numel();
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

void AdamW::zero_grad() {
  for (NamedTensor& p : params_) p.tensor.zero_grad();
}

std::vector<std::pair<std::string, Tensor>> AdamW::state_tensors() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back(params_[i].name + ".exp_avg", m_[i]);
    out.emplace_back(params_[i].name + ".exp_avg_sq", v_[i]);
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, Tensor>& tensors, int64_t steps) {
  for (size_t i = 0; i < params_.size(); ++i) {
    for (auto [suffix, dst] : {std::pair{".exp_avg", &m_[i]}, {".exp_avg_sq", &v_[i]}}) {
      auto it = tensors.find(params_[i].name + suffix);
      MV_CHECK(it != tensors.end(), "optimizer state lacks ", params_[i].name, suffix);
      MV_CHECK(it->second.shape() == dst->shape(), "optimizer state ", params_[i].name, suffix,
               " has shape ", shape_str(it->second.shape()), ", parameter has ",
               shape_str(dst->shape()));
      dst->copy_(it->second);
    }
  }
  t_ = steps;
}

double lr_at(int64_t step, int64_t total, int64_t warmup, double lr, double min_ratio) {
  if (warmup > 0 && step < warmup)
    return lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const int64_t span = std::max<int64_t>(total - warmup, 1);
  const double progress =
      std::clamp(static_cast<double>(step - warmup) / static_cast<double>(span), 0.0, 1.0);
  const double min_lr = lr * min_ratio;
  return min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

double grad_norm(const ParamList& params) {
  std::vector<Tensor> device_grads;
  for (const NamedTensor& p : params)
    if (p.tensor.grad().defined() && p.tensor.grad().device().is_cuda_backend())
      device_grads.push_back(p.tensor.grad());
  if (!device_grads.empty()) return cuda::grad_norm(device_grads);
  // Fixed-size chunks summed in order: the same bits for every thread count and run, which
  // bit-exact resume relies on (the norm feeds the clipping factor).
  constexpr int64_t kChunk = 1 << 14;
  double ss = 0;
  for (const NamedTensor& p : params) {
    const Tensor g = p.tensor.grad();
    if (!g.defined()) continue;
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

double clip_factor(double norm, double max_norm) {
  if (max_norm <= 0 || !(norm > max_norm)) return 1.0;
  return max_norm / (norm + 1e-6);
}

double clip_grads(const ParamList& params, double norm, double max_norm) {
  const double factor = clip_factor(norm, max_norm);
  if (factor == 1.0) return factor;
  for (const NamedTensor& p : params) {
    Tensor g = p.tensor.grad();
    if (!g.defined()) continue;
    MV_CHECK(g.dtype() == DType::f32 && g.is_contiguous(), "clip_grads: gradient of ", p.name,
             " is ", g.desc());
    float* d = g.data<float>();
    const float f = static_cast<float>(factor);
    const int64_t n = g.numel();
#pragma omp parallel for if (n > 65536) schedule(static)
    for (int64_t i = 0; i < n; ++i) d[i] *= f;
  }
  return factor;
}

}  // namespace minivlm
