// AdamW (decoupled weight decay, PyTorch semantics), the learning-rate schedule of SPEC §5, and
// global-norm gradient clipping. Parameters live on any device with a back-end: the update and the
// norm are its primitives (core/backend.h); moments and master weights are always fp32.
#pragma once
#include <map>
#include <string>

#include "nn/module.h"

namespace minivlm {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};

class AdamW {
 public:
  // params: contiguous f32 CPU tensors.
  AdamW(ParamList params, AdamWConfig config);
  // Moves the parameters (every handle of each sees the move, as with Tensor::set_data) and the
  // moments to `device`, parameters stored as `dtype` (f32 or bf16). Below f32 the optimizer keeps
  // the fp32 values as master weights: updates apply to them and the parameters are their
  // rounded image.
  void to(Device device, DType dtype);
  // One update of every parameter that has a gradient, g = grad · grad_scale (the clipping
  // factor):
  //   p ← p − lr·wd·p;  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;
  //   p ← p − lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + eps)
  void step(double lr, double grad_scale = 1.0);
  void zero_grad();
  int64_t steps() const { return t_; }
  const ParamList& params() const { return params_; }
  // The fp32 value of parameter i: its master weight, or the parameter itself.
  Tensor master(size_t i) const;

  // State for checkpoints: "<name>.exp_avg" / "<name>.exp_avg_sq" tensors and the step count.
  std::vector<std::pair<std::string, Tensor>> state_tensors() const;
  void load_state(const std::map<std::string, Tensor>& tensors, int64_t steps);

 private:
  ParamList params_;
  AdamWConfig c_;
  std::vector<Tensor> m_, v_;
  std::vector<Tensor> master_;  // per parameter; undefined while the parameter is fp32
  int64_t t_ = 0;
};

// Linear warmup from 0 over `warmup` steps, then cosine from lr to min_ratio·lr at `total` steps.
double lr_at(int64_t step, int64_t total, int64_t warmup, double lr, double min_ratio);

// The global L2 norm of all gradients, before clipping: f64 accumulation on the CPU, fp32 partial
// sums in a fixed order on a device.
double grad_norm(const ParamList& params);
// The clipping factor max_norm / (norm + 1e-6) when max_norm > 0 and norm > max_norm, else 1.
double clip_factor(double norm, double max_norm);

}  // namespace minivlm
