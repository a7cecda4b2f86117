#include "nn/clip.h"

#include "ops/ops.h"

namespace minivlm {

namespace {

const std::string kRoot = "vision_encoder.vision_model.";

void check_clip(const VisionConfig& c, const std::string& origin) {
  check_vit_activation(c, origin);
  MV_CHECK(c.resample == "bicubic", origin,
           ": vision.resample must be bicubic for a clip tower (its processor's resize), got ",
           c.resample);
}

std::unique_ptr<VisionTower> make_clip(const VisionConfig& c) {
  return std::make_unique<ClipVision>(c);
}

const bool registered = vision_towers().add("clip", {make_clip, check_clip});

}  // namespace

ClipVision::ClipVision(const VisionConfig& c) : VisionTower(c) {
  const int64_t D = c.hidden_size, p = c.patch_size, G = c.grid();
  class_embedding = make_param(kRoot + "embeddings.class_embedding", {D});
  patch_embedding =
      make_param(kRoot + "embeddings.patch_embedding.weight", {D, c.num_channels, p, p});
  position_embedding = make_param(kRoot + "embeddings.position_embedding.weight", {G * G + 1, D});
  pre_ln_w = make_param(kRoot + "pre_layrnorm.weight", {D});
  pre_ln_b = make_param(kRoot + "pre_layrnorm.bias", {D});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    layers.emplace_back(c, kRoot + "encoder.layers." + std::to_string(i) + ".");
  post_ln_w = make_param(kRoot + "post_layernorm.weight", {D});
  post_ln_b = make_param(kRoot + "post_layernorm.bias", {D});
}

void ClipVision::params(ParamList& out) const {
  for (const Tensor* t :
       {&class_embedding, &patch_embedding, &position_embedding, &pre_ln_w, &pre_ln_b})
    out.push_back({t->name(), *t});
  for (const VitLayer& l : layers) l.params(out);
  out.push_back({post_ln_w.name(), post_ln_w});
  out.push_back({post_ln_b.name(), post_ln_b});
}

void ClipVision::init(Rng& rng) {
  ParamList ps;
  params(ps);
  init_vit_params(ps, rng);
}

Tensor ClipVision::forward(const Tensor& pixels) const {
  const int64_t n = pixels.size(0), D = c_.hidden_size;
  // Pixels come from the host loader; the tower computes where its weights are, in their dtype.
  const Tensor px = patch_pixels(pixels, patch_embedding);
  const Tensor patches = ops::patch_embed(px, patch_embedding);  // [n, G², D]
  const Tensor cls = ops::expand(class_embedding.reshape({1, 1, D}), {n, 1, D});
  Tensor x = ops::add(ops::concat({cls.contiguous(), patches}, 1), position_embedding);
  x = ops::layernorm(x, pre_ln_w, pre_ln_b, c_.layer_norm_eps);
  for (const VitLayer& l : layers) x = l.forward(c_, x);
  return x.narrow(1, 1, x.size(1) - 1);
}

}  // namespace minivlm
