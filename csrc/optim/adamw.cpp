#include "optim/adamw.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/backend.h"

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
  std::vector<AdamWSlot> slots;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor g = params_[i].tensor.grad();
    if (!g.defined()) continue;
    slots.push_back(
        {params_[i].tensor, i < master_.size() ? master_[i] : Tensor(), g, m_[i], v_[i]});
  }
  if (slots.empty()) return;
  const AdamWHyper h{lr, c_.beta1, c_.beta2, c_.eps, c_.weight_decay, t_, grad_scale};
  backend_for(slots[0].param.device()).adamw_update(slots, h);
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
  std::vector<Tensor> grads;
  for (const NamedTensor& p : params)
    if (p.tensor.grad().defined()) grads.push_back(p.tensor.grad());
  if (grads.empty()) return 0.0;
  return backend_for(grads[0].device()).grad_norm(grads);
}

double clip_factor(double norm, double max_norm) {
  if (max_norm <= 0 || !(norm > max_norm)) return 1.0;
  return max_norm / (norm + 1e-6);
}

}  // namespace minivlm
