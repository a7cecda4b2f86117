// The CLIP ViT vision tower (vision.type "clip") with Hugging Face CLIPVisionModel semantics
// (SPEC §1.3): patch conv without bias, class token, learned positions, pre_layrnorm, pre-norm
// layers with biased projections and quick_gelu. Its features are the last hidden state without
// the class token and without post_layernorm (MiniMind-V uses last_hidden_state[:, 1:]).
#pragma once
#include <vector>

#include "nn/config.h"
#include "nn/module.h"
#include "nn/vision_tower.h"
#include "nn/vit.h"

namespace minivlm {

class ClipVision : public VisionTower {
 public:
  explicit ClipVision(const VisionConfig& c);
  void params(ParamList& out) const override;
  void init(Rng& rng) override;
  // pixels [n, 3, S, S] → patch features [n, G², D].
  Tensor forward(const Tensor& pixels) const override;

  Tensor class_embedding, patch_embedding, position_embedding, pre_ln_w, pre_ln_b, post_ln_w,
      post_ln_b;
  std::vector<VitLayer> layers;
};

}  // namespace minivlm
