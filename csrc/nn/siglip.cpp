// The SigLIP ViT vision tower (vision.type "siglip") with Hugging Face SiglipVisionModel
// semantics: a biased patch convolution plus learned absolute positions (no class token, no
// pre-norm), the pre-norm encoder layers CLIP also uses (nn/vit.h; hidden_act
// gelu_pytorch_tanh in the released models), then post_layernorm over every token. Its features
// are last_hidden_state, all G² patch tokens: what MiniMind-V's minimind-3v and SmolVLM take
// (vision.type "smolvlm" is this tower too).
// The pooling head of the Hugging Face checkpoints is not part of the tower.
#include "nn/vision_tower.h"
#include "nn/vit.h"
#include "ops/ops.h"

namespace minivlm {

namespace {

const std::string kRoot = "vision_encoder.vision_model.";

class SiglipVision : public VisionTower {
 public:
  explicit SiglipVision(const VisionConfig& c) : VisionTower(c) {
    const int64_t D = c.hidden_size, p = c.patch_size, G = c.grid();
    patch_w_ = make_param(kRoot + "embeddings.patch_embedding.weight", {D, c.num_channels, p, p});
    patch_b_ = make_param(kRoot + "embeddings.patch_embedding.bias", {D});
    position_ = make_param(kRoot + "embeddings.position_embedding.weight", {G * G, D});
    for (int64_t i = 0; i < c.num_hidden_layers; ++i)
      layers_.emplace_back(c, kRoot + "encoder.layers." + std::to_string(i) + ".");
    post_ln_w_ = make_param(kRoot + "post_layernorm.weight", {D});
    post_ln_b_ = make_param(kRoot + "post_layernorm.bias", {D});
  }

  void params(ParamList& out) const override {
    for (const Tensor* t : {&patch_w_, &patch_b_, &position_}) out.push_back({t->name(), *t});
    for (const VitLayer& l : layers_) l.params(out);
    out.push_back({post_ln_w_.name(), post_ln_w_});
    out.push_back({post_ln_b_.name(), post_ln_b_});
  }

  void init(Rng& rng) override {
    ParamList ps;
    params(ps);
    init_vit_params(ps, rng);
  }

  Tensor forward(const Tensor& pixels) const override {
    // Pixels come from the host loader; the tower computes where its weights are, in their dtype.
    const Tensor px = patch_pixels(pixels, patch_w_);
    Tensor x = ops::add(ops::patch_embed(px, patch_w_, patch_b_), position_);  // [n, G², D]
    for (const VitLayer& l : layers_) x = l.forward(c_, x);
    return ops::layernorm(x, post_ln_w_, post_ln_b_, c_.layer_norm_eps);
  }

 private:
  Tensor patch_w_, patch_b_, position_, post_ln_w_, post_ln_b_;
  std::vector<VitLayer> layers_;
};

std::unique_ptr<VisionTower> make_siglip(const VisionConfig& c) {
  return std::make_unique<SiglipVision>(c);
}

const bool registered = vision_towers().add("siglip", {make_siglip, check_vit_activation});
// SmolVLM's (Idefics3's) tower is the same computation under the same names; its own type picks
// SmolVLM's image processor (tiles, a global image, video frames).
const bool registered_smolvlm = vision_towers().add("smolvlm", {make_siglip, check_vit_activation});

}  // namespace

}  // namespace minivlm
