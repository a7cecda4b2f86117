#include "nn/clip.h"

#include "ops/ops.h"

namespace minivlm {

namespace {

const std::string kRoot = "vision_encoder.vision_model.";

void check_clip(const VisionConfig& c, const std::string& origin) {
  MV_CHECK(
      c.hidden_act == "quick_gelu" || c.hidden_act == "gelu" || c.hidden_act == "gelu_pytorch_tanh",
      origin, ": vision.hidden_act must be quick_gelu, gelu or gelu_pytorch_tanh, got ",
      c.hidden_act);
}

std::unique_ptr<VisionTower> make_clip(const VisionConfig& c) {
  return std::make_unique<ClipVision>(c);
}

const bool registered = vision_towers().add("clip", {make_clip, check_clip});

}  // namespace

ClipLayer::ClipLayer(const VisionConfig& c, const std::string& p) {
  const int64_t D = c.hidden_size, I = c.intermediate_size;
  ln1_w = make_param(p + "layer_norm1.weight", {D});
  ln1_b = make_param(p + "layer_norm1.bias", {D});
  q_w = make_param(p + "self_attn.q_proj.weight", {D, D});
  q_b = make_param(p + "self_attn.q_proj.bias", {D});
  k_w = make_param(p + "self_attn.k_proj.weight", {D, D});
  k_b = make_param(p + "self_attn.k_proj.bias", {D});
  v_w = make_param(p + "self_attn.v_proj.weight", {D, D});
  v_b = make_param(p + "self_attn.v_proj.bias", {D});
  out_w = make_param(p + "self_attn.out_proj.weight", {D, D});
  out_b = make_param(p + "self_attn.out_proj.bias", {D});
  ln2_w = make_param(p + "layer_norm2.weight", {D});
  ln2_b = make_param(p + "layer_norm2.bias", {D});
  fc1_w = make_param(p + "mlp.fc1.weight", {I, D});
  fc1_b = make_param(p + "mlp.fc1.bias", {I});
  fc2_w = make_param(p + "mlp.fc2.weight", {D, I});
  fc2_b = make_param(p + "mlp.fc2.bias", {D});
}

void ClipLayer::params(ParamList& out) const {
  for (const Tensor* t : {&ln1_w, &ln1_b, &q_w, &q_b, &k_w, &k_b, &v_w, &v_b, &out_w, &out_b,
                          &ln2_w, &ln2_b, &fc1_w, &fc1_b, &fc2_w, &fc2_b})
    out.push_back({t->name(), *t});
}

Tensor ClipLayer::forward(const VisionConfig& c, const Tensor& x) const {
  const int64_t n = x.size(0), L = x.size(1), heads = c.num_attention_heads,
                hd = c.hidden_size / heads;
  const Tensor a = ops::layernorm(x, ln1_w, ln1_b, c.layer_norm_eps);
  const Tensor q = ops::linear(a, q_w, q_b).reshape({n, L, heads, hd});
  const Tensor k = ops::linear(a, k_w, k_b).reshape({n, L, heads, hd});
  const Tensor v = ops::linear(a, v_w, v_b).reshape({n, L, heads, hd});
  const Tensor o = ops::attention(q, k, v, /*causal=*/false).reshape({n, L, c.hidden_size});
  const Tensor x1 = ops::add(x, ops::linear(o, out_w, out_b));
  const Tensor m = ops::layernorm(x1, ln2_w, ln2_b, c.layer_norm_eps);
  Tensor f = ops::linear(m, fc1_w, fc1_b);
  f = c.hidden_act == "gelu"                ? ops::gelu(f)
      : c.hidden_act == "gelu_pytorch_tanh" ? ops::gelu_tanh(f)
                                            : ops::quick_gelu(f);
  return ops::add(x1, ops::linear(f, fc2_w, fc2_b));
}

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
  for (const ClipLayer& l : layers) l.params(out);
  out.push_back({post_ln_w.name(), post_ln_w});
  out.push_back({post_ln_b.name(), post_ln_b});
}

void ClipVision::init(Rng& rng) {
  ParamList ps;
  params(ps);
  for (NamedTensor& p : ps) {
    const bool is_norm =
        p.name.find("norm") != std::string::npos || p.name.find("layrnorm") != std::string::npos;
    const bool is_bias = p.name.size() > 5 && p.name.compare(p.name.size() - 5, 5, ".bias") == 0;
    if (is_bias)
      init_constant(p.tensor, 0.0);
    else if (is_norm)
      init_constant(p.tensor, 1.0);
    else
      init_normal(p.tensor, rng, 0.02);
  }
}

Tensor ClipVision::forward(const Tensor& pixels) const {
  const int64_t n = pixels.size(0), D = c_.hidden_size;
  // Pixels come from the host loader; the tower computes where its weights are, in their dtype.
  const Tensor px = pixels.to(patch_embedding.device()).to(patch_embedding.dtype());
  const Tensor patches = ops::patch_embed(px, patch_embedding);  // [n, G², D]
  const Tensor cls = ops::expand(class_embedding.reshape({1, 1, D}), {n, 1, D});
  Tensor x = ops::add(ops::concat({cls.contiguous(), patches}, 1), position_embedding);
  x = ops::layernorm(x, pre_ln_w, pre_ln_b, c_.layer_norm_eps);
  for (const ClipLayer& l : layers) x = l.forward(c_, x);
  return x.narrow(1, 1, x.size(1) - 1);
}

}  // namespace minivlm
