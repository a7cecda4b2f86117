#include "nn/llm.h"

#include "autograd/node.h"
#include "ops/ops.h"

namespace minivlm {

KVCache KVCache::allocate(const LlmConfig& c, int64_t batch, int64_t max_len, Device device) {
  KVCache kv;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const Shape shape = {batch, max_len, c.num_key_value_heads, c.head_dim};
    kv.k.push_back(Tensor::zeros(shape, DType::f32, device));
    kv.v.push_back(Tensor::zeros(shape, DType::f32, device));
  }
  return kv;
}

DecoderLayer::DecoderLayer(const LlmConfig& c, const std::string& p) {
  const int64_t H = c.hidden_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim, I = c.intermediate_size;
  input_norm = make_param(p + "input_layernorm.weight", {H});
  q_proj = make_param(p + "self_attn.q_proj.weight", {q, H});
  k_proj = make_param(p + "self_attn.k_proj.weight", {kv, H});
  v_proj = make_param(p + "self_attn.v_proj.weight", {kv, H});
  o_proj = make_param(p + "self_attn.o_proj.weight", {H, q});
  if (c.qk_norm) {
    q_norm = make_param(p + "self_attn.q_norm.weight", {c.head_dim});
    k_norm = make_param(p + "self_attn.k_norm.weight", {c.head_dim});
  }
  post_norm = make_param(p + "post_attention_layernorm.weight", {H});
  gate_proj = make_param(p + "mlp.gate_proj.weight", {I, H});
  up_proj = make_param(p + "mlp.up_proj.weight", {I, H});
  down_proj = make_param(p + "mlp.down_proj.weight", {H, I});
}

void DecoderLayer::params(ParamList& out) const {
  for (const Tensor* t : {&input_norm, &q_proj, &k_proj, &v_proj, &o_proj, &q_norm, &k_norm,
                          &post_norm, &gate_proj, &up_proj, &down_proj})
    if (t->defined()) out.push_back({t->name(), *t});
}

Tensor DecoderLayer::forward(const LlmConfig& c, const Tensor& h, int64_t start_pos,
                             Tensor* cache_k, Tensor* cache_v) const {
  const int64_t B = h.size(0), T = h.size(1);
  const Tensor a = ops::rmsnorm(h, input_norm, c.rms_norm_eps);
  Tensor q = ops::linear(a, q_proj).reshape({B, T, c.num_attention_heads, c.head_dim});
  Tensor k = ops::linear(a, k_proj).reshape({B, T, c.num_key_value_heads, c.head_dim});
  Tensor v = ops::linear(a, v_proj).reshape({B, T, c.num_key_value_heads, c.head_dim});
  if (c.qk_norm) {
    q = ops::rmsnorm(q, q_norm, c.rms_norm_eps);
    k = ops::rmsnorm(k, k_norm, c.rms_norm_eps);
  }
  q = ops::rope(q, c.rope_theta, start_pos);
  k = ops::rope(k, c.rope_theta, start_pos);
  if (cache_k != nullptr) {
    MV_CHECK(!grad_enabled() || !h.requires_grad(), "the KV cache is for inference only");
    MV_CHECK(start_pos + T <= cache_k->size(1), "KV cache overflow: ", start_pos + T,
             " positions for a cache of ", cache_k->size(1));
    cache_k->narrow(1, start_pos, T).copy_(k);
    cache_v->narrow(1, start_pos, T).copy_(v);
    k = cache_k->narrow(1, 0, start_pos + T);
    v = cache_v->narrow(1, 0, start_pos + T);
  }
  const Tensor o =
      ops::attention(q, k, v, /*causal=*/true).reshape({B, T, c.num_attention_heads * c.head_dim});
  const Tensor h1 = ops::add(h, ops::linear(o, o_proj));
  const Tensor m = ops::rmsnorm(h1, post_norm, c.rms_norm_eps);
  const Tensor mlp =
      ops::linear(ops::swiglu(ops::linear(m, gate_proj), ops::linear(m, up_proj)), down_proj);
  return ops::add(h1, mlp);
}

MiniMindLM::MiniMindLM(const LlmConfig& c) : c_(c) {
  embed_tokens = make_param("model.embed_tokens.weight", {c.vocab_size, c.hidden_size});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    layers.emplace_back(c, "model.layers." + std::to_string(i) + ".");
  final_norm = make_param("model.norm.weight", {c.hidden_size});
  if (!c.tie_word_embeddings) lm_head = make_param("lm_head.weight", {c.vocab_size, c.hidden_size});
}

void MiniMindLM::params(ParamList& out) const {
  out.push_back({embed_tokens.name(), embed_tokens});
  for (const DecoderLayer& l : layers) l.params(out);
  out.push_back({final_norm.name(), final_norm});
  if (lm_head.defined()) out.push_back({lm_head.name(), lm_head});
}

void MiniMindLM::init(Rng& rng) {
  ParamList ps;
  params(ps);
  for (NamedTensor& p : ps) {
    const bool is_norm = p.name.find("norm") != std::string::npos;
    if (is_norm)
      init_constant(p.tensor, 1.0);
    else
      init_normal(p.tensor, rng, 0.02);
  }
}

Tensor MiniMindLM::embed(const Tensor& ids) const { return ops::embedding(embed_tokens, ids); }

Tensor MiniMindLM::forward_hidden(const Tensor& h0, int64_t start_pos, KVCache* cache) const {
  Tensor h = h0;
  for (size_t i = 0; i < layers.size(); ++i) {
    h = layers[i].forward(c_, h, start_pos, cache ? &cache->k[i] : nullptr,
                          cache ? &cache->v[i] : nullptr);
  }
  if (cache != nullptr) cache->length = start_pos + h0.size(1);
  return ops::rmsnorm(h, final_norm, c_.rms_norm_eps);
}

Tensor MiniMindLM::logits(const Tensor& hidden) const {
  return ops::linear(hidden, lm_head.defined() ? lm_head : embed_tokens);
}

}  // namespace minivlm
