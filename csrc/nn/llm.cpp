#include "nn/llm.h"

#include <algorithm>

#include "autograd/node.h"
#include "ops/ops.h"

namespace minivlm {

KVCache KVCache::allocate(const LlmConfig& c, int64_t batch, int64_t max_len, Device device,
                          DType dtype) {
  KVCache kv;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const Shape shape = {batch, max_len, c.num_key_value_heads, c.head_dim};
    kv.k.push_back(Tensor::zeros(shape, dtype, device));
    kv.v.push_back(Tensor::zeros(shape, dtype, device));
  }
  return kv;
}

KVCache KVCache::allocate_for(const MiniMindLM& lm, int64_t batch, int64_t max_len) {
  return allocate(lm.config(), batch, max_len, lm.embed_tokens.device(), lm.embed_tokens.dtype());
}

KVCache KVCache::row(int64_t b, int64_t length) const {
  MV_CHECK(!k.empty() && b >= 0 && b < k[0].size(0), "KV cache: row ", b, " of a cache of ",
           k.empty() ? 0 : k[0].size(0), " rows");
  KVCache view;
  view.length = length;
  for (size_t l = 0; l < k.size(); ++l) {
    view.k.push_back(k[l].narrow(0, b, 1));
    view.v.push_back(v[l].narrow(0, b, 1));
  }
  return view;
}

SwigluMlp::SwigluMlp(const std::string& p, int64_t H, int64_t I) {
  gate_proj = make_param(p + "gate_proj.weight", {I, H});
  up_proj = make_param(p + "up_proj.weight", {I, H});
  down_proj = make_param(p + "down_proj.weight", {H, I});
}

Tensor SwigluMlp::forward(const Tensor& x) const {
  return ops::linear(ops::swiglu(ops::linear(x, gate_proj), ops::linear(x, up_proj)), down_proj);
}

Tensor moe_forward(const LlmConfig& c, const Tensor& x, const Tensor& router,
                   const std::vector<SwigluMlp>& experts, Tensor* aux) {
  const int64_t N = x.size(0), H = x.size(1), E = static_cast<int64_t>(experts.size()),
                k = c.num_experts_per_tok;
  MV_CHECK(x.dim() == 2 && router.dim() == 2 && router.size(0) == E && router.size(1) == H,
           "moe: x ", shape_str(x.shape()), " and router ", shape_str(router.shape()), " for ", E,
           " experts");
  const Tensor logits = ops::linear(x, router);  // [N, E]
  const Tensor probs = ops::softmax(logits);
  // The routing, on the host: each token's k largest probabilities (torch.topk's choice: the
  // larger value first, ties to the lower expert).
  const std::vector<float> p = probs.to(kCPU).to_float_vector();
  std::vector<int64_t> choice(static_cast<size_t>(N * k));  // flat index n·E + e, slot by slot
  std::vector<int64_t> order(static_cast<size_t>(E));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t e = 0; e < E; ++e) order[e] = e;
    const float* row = p.data() + n * E;
    std::stable_sort(order.begin(), order.end(),
                     [row](int64_t a, int64_t b) { return row[a] > row[b]; });
    for (int64_t j = 0; j < k; ++j) choice[n * k + j] = n * E + order[j];
  }
  const Tensor flat_choice = Tensor::from_vector(choice, {N * k});
  // The chosen weights [N·k, 1]. Renormalised p_i / Σ_topk p_j is the softmax of the chosen
  // logits (the full softmax's denominator cancels).
  Tensor w;
  if (c.norm_topk_prob)
    w = ops::softmax(ops::gather_rows(logits.reshape({N * E, 1}), flat_choice).reshape({N, k}))
            .reshape({N * k, 1});
  else
    w = ops::gather_rows(probs.reshape({N * E, 1}), flat_choice);
  Tensor y = Tensor::zeros({N, H}, x.dtype(), x.device());
  std::vector<int64_t> routed(static_cast<size_t>(E), 0);
  for (int64_t e = 0; e < E; ++e) {
    std::vector<int64_t> tokens, slots;  // in token order
    for (int64_t i = 0; i < N * k; ++i)
      if (choice[i] % E == e) {
        tokens.push_back(i / k);
        slots.push_back(i);
      }
    routed[e] = static_cast<int64_t>(tokens.size());
    if (tokens.empty()) continue;
    const int64_t M = routed[e];
    const Tensor tok = Tensor::from_vector(tokens, {M});
    const Tensor we = ops::gather_rows(w, Tensor::from_vector(slots, {M}));  // [M, 1]
    const Tensor ye = ops::mul(experts[e].forward(ops::gather_rows(x, tok)), we);
    y = ops::index_add_rows(y, tok, ye);
  }
  if (aux != nullptr && c.router_aux_loss_coef > 0) {
    std::vector<double> load(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; ++e)
      load[e] = static_cast<double>(routed[e]) / static_cast<double>(N);
    const Tensor load_t = Tensor::from_vector(load, {E}).to(probs.dtype()).to(probs.device());
    const Tensor a = ops::scale(ops::sum(ops::mul(ops::mean(probs, 0), load_t)),
                                c.router_aux_loss_coef * static_cast<double>(E));
    *aux = aux->defined() ? ops::add(*aux, a) : a;
  }
  return y;
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
  if (c.use_moe) {
    router = make_param(p + "mlp.gate.weight", {c.num_experts, H});
    for (int64_t e = 0; e < c.num_experts; ++e)
      experts.emplace_back(p + "mlp.experts." + std::to_string(e) + ".", H,
                           c.moe_intermediate_size);
    return;
  }
  gate_proj = make_param(p + "mlp.gate_proj.weight", {I, H});
  up_proj = make_param(p + "mlp.up_proj.weight", {I, H});
  down_proj = make_param(p + "mlp.down_proj.weight", {H, I});
}

void DecoderLayer::params(ParamList& out) const {
  for (const Tensor* t : {&input_norm, &q_proj, &k_proj, &v_proj, &o_proj, &q_norm, &k_norm,
                          &post_norm, &gate_proj, &up_proj, &down_proj, &router})
    if (t->defined()) out.push_back({t->name(), *t});
  for (const SwigluMlp& e : experts)
    for (const Tensor* t : {&e.gate_proj, &e.up_proj, &e.down_proj}) out.push_back({t->name(), *t});
}

PackedRows PackedRows::from_bounds(const std::vector<std::vector<int64_t>>& bounds, int64_t T) {
  const auto B = static_cast<int64_t>(bounds.size());
  std::vector<int64_t> start(static_cast<size_t>(B * T)), pos(static_cast<size_t>(B * T));
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<int64_t>& bd = bounds[static_cast<size_t>(b)];
    MV_CHECK(!bd.empty() && bd.front() == 0 && bd.back() <= T, "packed row ", b,
             ": sample bounds must start at 0 and end within its ", T, " tokens");
    int64_t s = 0;
    size_t k = 1;
    for (int64_t t = 0; t < T; ++t) {
      // The bound at or before t starts t's sample; the end starts the padding.
      while (k < bd.size() && bd[k] <= t) {
        MV_CHECK(bd[k] >= bd[k - 1], "packed row ", b, ": sample bounds decrease at ", bd[k]);
        s = bd[k++];
      }
      start[static_cast<size_t>(b * T + t)] = s;
      pos[static_cast<size_t>(b * T + t)] = t - s;
    }
  }
  return {Tensor::from_vector(start, {B, T}), Tensor::from_vector(pos, {B, T})};
}

Tensor DecoderLayer::forward(const LlmConfig& c, const Tensor& h, int64_t start_pos,
                             Tensor* cache_k, Tensor* cache_v, Tensor* aux,
                             const PackedRows* packed) const {
  MV_CHECK(packed == nullptr || (cache_k == nullptr && start_pos == 0),
           "packed rows are for training: no KV cache, no start position");
  const int64_t B = h.size(0), T = h.size(1);
  const Tensor a = ops::rmsnorm(h, input_norm, c.rms_norm_eps);
  Tensor q = ops::linear(a, q_proj).reshape({B, T, c.num_attention_heads, c.head_dim});
  Tensor k = ops::linear(a, k_proj).reshape({B, T, c.num_key_value_heads, c.head_dim});
  Tensor v = ops::linear(a, v_proj).reshape({B, T, c.num_key_value_heads, c.head_dim});
  if (c.qk_norm) {
    q = ops::rmsnorm(q, q_norm, c.rms_norm_eps);
    k = ops::rmsnorm(k, k_norm, c.rms_norm_eps);
  }
  if (packed != nullptr) {
    q = ops::rope_at(q, c.rope_theta, packed->positions);
    k = ops::rope_at(k, c.rope_theta, packed->positions);
  } else {
    q = ops::rope(q, c.rope_theta, start_pos);
    k = ops::rope(k, c.rope_theta, start_pos);
  }
  if (cache_k != nullptr) {
    MV_CHECK(!grad_enabled() || !h.requires_grad(), "the KV cache is for inference only");
    MV_CHECK(start_pos + T <= cache_k->size(1), "KV cache overflow: ", start_pos + T,
             " positions for a cache of ", cache_k->size(1));
    MV_CHECK(cache_k->dtype() == k.dtype() && cache_v->dtype() == v.dtype(),
             "KV cache: ", dtype_name(cache_k->dtype()), " for keys and values of ",
             dtype_name(k.dtype()), " (allocate it in the model's dtype: KVCache::allocate_for)");
    cache_k->narrow(1, start_pos, T).copy_(k);
    cache_v->narrow(1, start_pos, T).copy_(v);
    k = cache_k->narrow(1, 0, start_pos + T);
    v = cache_v->narrow(1, 0, start_pos + T);
  }
  const Tensor o = ops::attention(q, k, v, /*causal=*/true, packed ? packed->seq_start : Tensor())
                       .reshape({B, T, c.num_attention_heads * c.head_dim});
  const Tensor h1 = ops::add(h, ops::linear(o, o_proj));
  const Tensor m = ops::rmsnorm(h1, post_norm, c.rms_norm_eps);
  if (router.defined()) {
    const int64_t H = c.hidden_size;
    return ops::add(h1,
                    moe_forward(c, m.reshape({B * T, H}), router, experts, aux).reshape({B, T, H}));
  }
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

Tensor MiniMindLM::forward_hidden(const Tensor& h0, int64_t start_pos, KVCache* cache, Tensor* aux,
                                  const PackedRows* packed) const {
  Tensor h = h0;
  for (size_t i = 0; i < layers.size(); ++i) {
    h = layers[i].forward(c_, h, start_pos, cache ? &cache->k[i] : nullptr,
                          cache ? &cache->v[i] : nullptr, aux, packed);
  }
  if (cache != nullptr) cache->length = start_pos + h0.size(1);
  return ops::rmsnorm(h, final_norm, c_.rms_norm_eps);
}

Tensor MiniMindLM::logits(const Tensor& hidden) const {
  return ops::linear(hidden, lm_head.defined() ? lm_head : embed_tokens);
}

}  // namespace minivlm
