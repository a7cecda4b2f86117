#include "nn/vit.h"

#include "ops/ops.h"

namespace minivlm {

VitLayer::VitLayer(const VisionConfig& c, const std::string& p) {
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

void VitLayer::params(ParamList& out) const {
  for (const Tensor* t : {&ln1_w, &ln1_b, &q_w, &q_b, &k_w, &k_b, &v_w, &v_b, &out_w, &out_b,
                          &ln2_w, &ln2_b, &fc1_w, &fc1_b, &fc2_w, &fc2_b})
    out.push_back({t->name(), *t});
}

Tensor VitLayer::forward(const VisionConfig& c, const Tensor& x) const {
  const int64_t n = x.size(0), L = x.size(1), heads = c.num_attention_heads,
                hd = c.hidden_size / heads;
  const Tensor a = ops::layernorm(x, ln1_w, ln1_b, c.layer_norm_eps);
  const Tensor q = ops::linear(a, q_w, q_b).reshape({n, L, heads, hd});
  const Tensor k = ops::linear(a, k_w, k_b).reshape({n, L, heads, hd});
  const Tensor v = ops::linear(a, v_w, v_b).reshape({n, L, heads, hd});
  const Tensor o = ops::attention(q, k, v, /*causal=*/false).reshape({n, L, c.hidden_size});
  const Tensor x1 = ops::add(x, ops::linear(o, out_w, out_b));
  const Tensor m = ops::layernorm(x1, ln2_w, ln2_b, c.layer_norm_eps);
  const Tensor f = vit_activation(c, ops::linear(m, fc1_w, fc1_b));
  return ops::add(x1, ops::linear(f, fc2_w, fc2_b));
}

Tensor vit_activation(const VisionConfig& c, const Tensor& x) {
  if (c.hidden_act == "quick_gelu") return ops::quick_gelu(x);
  if (c.hidden_act == "gelu") return ops::gelu(x);
  if (c.hidden_act == "gelu_pytorch_tanh") return ops::gelu_tanh(x);
  MV_FAIL("vision.hidden_act ", c.hidden_act, " is not supported");
}

void check_vit_activation(const VisionConfig& c, const std::string& origin) {
  MV_CHECK(
      c.hidden_act == "quick_gelu" || c.hidden_act == "gelu" || c.hidden_act == "gelu_pytorch_tanh",
      origin, ": vision.hidden_act must be quick_gelu, gelu or gelu_pytorch_tanh, got ",
      c.hidden_act);
}

void init_vit_params(ParamList& params, Rng& rng) {
  for (NamedTensor& p : params) {
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

}  // namespace minivlm
