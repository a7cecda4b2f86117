// The MiniMind decoder-only LM (SPEC §1.2): pre-norm layers of GQA attention with half-split RoPE
// (optional per-head q/k RMSNorm) and a SwiGLU MLP — or, with llm.use_moe, MiniMind-3's
// mixture of SwiGLU experts behind a softmax router — no biases, tied embeddings by default.
#pragma once
#include <vector>

#include "nn/config.h"
#include "nn/module.h"

namespace minivlm {

class MiniMindLM;

// Keys and values of past positions, per layer: [B, max_len, nkv, hd]; k is stored after qk-norm
// and RoPE, on the device of the model it serves and in the dtype its activations have (the
// weights': bf16 for a model placed in bf16, f32 otherwise). Used only without autograd
// (generation).
struct KVCache {
  std::vector<Tensor> k, v;
  int64_t length = 0;  // positions filled
  int64_t capacity() const { return k.empty() ? 0 : k[0].size(1); }
  DType dtype() const { return k.empty() ? DType::f32 : k[0].dtype(); }
  static KVCache allocate(const LlmConfig& c, int64_t batch, int64_t max_len, Device device = kCPU,
                          DType dtype = DType::f32);
  // The cache `lm` decodes into: on its device, in its weights' dtype.
  static KVCache allocate_for(const MiniMindLM& lm, int64_t batch, int64_t max_len);
  // Row b as a cache of batch 1 whose tensors are views of this one's (writes go here).
  KVCache row(int64_t b, int64_t length = 0) const;
};

// Several samples per row (packed training batches, SPEC §4.2), both [B, T] i64 on the host:
// token t of row b is at position positions[b, t] (counted from its sample's first token) and
// attends only to keys seq_start[b, t] ≤ j ≤ t (the keys of its own sample).
struct PackedRows {
  Tensor seq_start, positions;
  // bounds[b] = row b's sample starts then its end (ascending, the first 0, the last ≤ T); the
  // padding after the end is a sample of its own. Throws minivlm::Error on bad bounds.
  static PackedRows from_bounds(const std::vector<std::vector<int64_t>>& bounds, int64_t T);
};

// One SwiGLU feed-forward: down(silu(gate(x)) · up(x)).
struct SwigluMlp {
  Tensor gate_proj, up_proj, down_proj;  // [I, H], [I, H], [H, I]
  SwigluMlp() = default;
  SwigluMlp(const std::string& prefix, int64_t hidden, int64_t intermediate);
  Tensor forward(const Tensor& x) const;
};

// MiniMind-3's MOEFeedForward on x [N, H]: p = softmax(x · routerᵀ) over the E experts; each
// token goes to its top-k experts (ties to the lower index), weighted by their p — renormalised
// to sum to 1 when norm_topk_prob —, and y = Σ weight · expert(x). The routing itself (which
// experts) carries no gradient; the weights do. When `aux` is given, adds the load-balancing loss
// router_aux_loss_coef · E · Σ_e (tokens routed to e / N) · mean_n p[n, e] to it. An expert that
// receives no token takes no part in the graph (its gradient is zero).
Tensor moe_forward(const LlmConfig& c, const Tensor& x, const Tensor& router,
                   const std::vector<SwigluMlp>& experts, Tensor* aux);

struct DecoderLayer {
  Tensor input_norm, q_proj, k_proj, v_proj, o_proj, q_norm, k_norm, post_norm, gate_proj, up_proj,
      down_proj;
  Tensor router;                   // MoE: [E, H] (mlp.gate.weight); dense: undefined
  std::vector<SwigluMlp> experts;  // MoE: E experts (mlp.experts.{e}.*); dense: empty

  DecoderLayer(const LlmConfig& c, const std::string& prefix);
  void params(ParamList& out) const;
  // h [B, T, H] at positions start_pos.. → [B, T, H]. With a cache, this step's k/v are written at
  // start_pos and attention reads all cached positions. A MoE layer adds its router loss to *aux
  // when aux is given.
  // With `packed` (no cache, start_pos 0): RoPE at its positions, attention within its samples.
  Tensor forward(const LlmConfig& c, const Tensor& h, int64_t start_pos, Tensor* cache_k,
                 Tensor* cache_v, Tensor* aux = nullptr, const PackedRows* packed = nullptr) const;
};

class MiniMindLM {
 public:
  explicit MiniMindLM(const LlmConfig& c);
  const LlmConfig& config() const { return c_; }
  void params(ParamList& out) const;
  void init(Rng& rng);

  Tensor embed(const Tensor& ids) const;  // [B, T] → [B, T, H]
  // Decoder stack and final norm: h [B, T, H] → [B, T, H]. With `aux`, the MoE layers' router
  // losses summed (a scalar; undefined for a dense model). With `packed`, each row holds several
  // samples (PackedRows), which then see nothing of each other.
  Tensor forward_hidden(const Tensor& h, int64_t start_pos = 0, KVCache* cache = nullptr,
                        Tensor* aux = nullptr, const PackedRows* packed = nullptr) const;
  Tensor logits(const Tensor& hidden) const;  // [..., H] → [..., V]

  Tensor embed_tokens, final_norm, lm_head;  // lm_head undefined when tied
  std::vector<DecoderLayer> layers;

 private:
  LlmConfig c_;
};

}  // namespace minivlm
