// AdamW (decoupled weight decay, PyTorch semantics), the learning-rate schedule of SPEC §5, and
// global-norm gradient clipping.
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
  AdamW(ParamList params, AdamWConfig config);
  // One update of every parameter that has a gradient:
  //   p ← p − lr·wd·p;  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;
  //   p ← p − lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + eps)
  void step(double lr);
  void zero_grad();
  int64_t steps() const { return t_; }
  const ParamList& params() const { return params_; }

  // State for checkpoints: "<name>.exp_avg" / "<name>.exp_avg_sq" tensors and the step count.
  std::vector<std::pair<std::string, Tensor>> state_tensors() const;
  void load_state(const std::map<std::string, Tensor>& tensors, int64_t steps);

 private:
  ParamList params_;
  AdamWConfig c_;
  std::vector<Tensor> m_, v_;
  int64_t t_ = 0;
};

// Linear warmup from 0 over `warmup` steps, then cosine from lr to min_ratio·lr at `total` steps.
double lr_at(int64_t step, int64_t total, int64_t warmup, double lr, double min_ratio);

// The global L2 norm of all gradients (f64 accumulation), before clipping.
double grad_norm(const ParamList& params);
// Scales every gradient by min(1, max_norm / norm) in place. Returns the factor used.
double clip_grads(const ParamList& params, double norm, double max_norm);

}  // namespace minivlm
