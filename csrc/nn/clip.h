// The CLIP ViT vision tower with Hugging Face CLIPVisionModel semantics (SPEC §1.3): patch conv
// without bias, class token, learned positions, pre_layrnorm, pre-norm layers with biased
// projections and quick_gelu. features() returns the last hidden state without the class token and
// without post_layernorm (MiniMind-V uses last_hidden_state[:, 1:]). Always frozen.
#pragma once
#include <vector>

#include "nn/config.h"
#include "nn/module.h"

namespace minivlm {

struct ClipLayer {
  Tensor ln1_w, ln1_b, q_w, q_b, k_w, k_b, v_w, v_b, out_w, out_b, ln2_w, ln2_b, fc1_w, fc1_b,
      fc2_w, fc2_b;
  ClipLayer(const VisionConfig& c, const std::string& prefix);
  void params(ParamList& out) const;
  Tensor forward(const VisionConfig& c, const Tensor& x) const;  // [n, L, D] → [n, L, D]
};

class ClipVision {
 public:
  explicit ClipVision(const VisionConfig& c);
  void params(ParamList& out) const;
  void init(Rng& rng);
  // pixels [n, 3, S, S] → patch features [n, G², D].
  Tensor features(const Tensor& pixels) const;

  Tensor class_embedding, patch_embedding, position_embedding, pre_ln_w, pre_ln_b, post_ln_w,
      post_ln_b;
  std::vector<ClipLayer> layers;

 private:
  VisionConfig c_;
};

}  // namespace minivlm
