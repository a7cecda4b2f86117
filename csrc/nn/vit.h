// The pieces CLIP and SigLIP vision towers share (Hugging Face CLIPEncoderLayer and
// SiglipEncoderLayer are the same computation under the same weight names): a pre-norm encoder
// layer with biased q/k/v/out projections, bidirectional attention and a two-layer MLP whose
// activation is vision.hidden_act.
#pragma once
#include <string>

#include "nn/config.h"
#include "nn/module.h"

namespace minivlm {

struct VitLayer {
  Tensor ln1_w, ln1_b, q_w, q_b, k_w, k_b, v_w, v_b, out_w, out_b, ln2_w, ln2_b, fc1_w, fc1_b,
      fc2_w, fc2_b;
  VitLayer(const VisionConfig& c, const std::string& prefix);
  void params(ParamList& out) const;
  Tensor forward(const VisionConfig& c, const Tensor& x) const;  // [n, L, D] → [n, L, D]
};

// vision.hidden_act applied to x: quick_gelu, gelu (erf) or gelu_pytorch_tanh.
Tensor vit_activation(const VisionConfig& c, const Tensor& x);
// Throws naming `origin` when vision.hidden_act is none of those.
void check_vit_activation(const VisionConfig& c, const std::string& origin);
// Hugging Face's initialisation of these towers: biases 0, norm weights 1, the rest N(0, 0.02²).
void init_vit_params(ParamList& params, Rng& rng);

}  // namespace minivlm
