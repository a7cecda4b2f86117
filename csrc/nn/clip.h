// The CLIP ViT vision tower (vision.type "clip") with Hugging Face CLIPVisionModel semantics
// (SPEC §1.3): patch conv without bias, class token, learned positions, pre_layrnorm, pre-norm
// layers with biased projections and quick_gelu. Its features are the last hidden state without
// the class token and without post_layernorm (MiniMind-V uses last_hidden_state[:, 1:]).
#pragma once
#include <vector>

#include "nn/config.h"
#include "nn/module.h"
#include "nn/vision_tower.h"

namespace minivlm {

struct ClipLayer {
  Tensor ln1_w, ln1_b, q_w, q_b, k_w, k_b, v_w, v_b, out_w, out_b, ln2_w, ln2_b, fc1_w, fc1_b,
      fc2_w, fc2_b;
  ClipLayer(const VisionConfig& c, const std::string& prefix);
  void params(ParamList& out) const;
  Tensor forward(const VisionConfig& c, const Tensor& x) const;  // [n, L, D] → [n, L, D]
};

class ClipVision : public VisionTower {
 public:
  explicit ClipVision(const VisionConfig& c);
  void params(ParamList& out) const override;
  void init(Rng& rng) override;
  // pixels [n, 3, S, S] → patch features [n, G², D].
  Tensor forward(const Tensor& pixels) const override;

  Tensor class_embedding, patch_embedding, position_embedding, pre_ln_w, pre_ln_b, post_ln_w,
      post_ln_b;
  std::vector<ClipLayer> layers;
};

}  // namespace minivlm
