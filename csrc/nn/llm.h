// The MiniMind decoder-only LM (SPEC §1.2): pre-norm layers of GQA attention with half-split RoPE
// (optional per-head q/k RMSNorm) and a SwiGLU MLP, no biases, tied embeddings by default.
#pragma once
#include <vector>

#include "nn/config.h"
#include "nn/module.h"

namespace minivlm {

// Keys and values of past positions, per layer: [B, max_len, nkv, hd]; k is stored after qk-norm
// and RoPE, on the device of the model it serves. Used only without autograd (generation).
struct KVCache {
  std::vector<Tensor> k, v;
  int64_t length = 0;  // positions filled
  int64_t capacity() const { return k.empty() ? 0 : k[0].size(1); }
  static KVCache allocate(const LlmConfig& c, int64_t batch, int64_t max_len, Device device = kCPU);
};

struct DecoderLayer {
  Tensor input_norm, q_proj, k_proj, v_proj, o_proj, q_norm, k_norm, post_norm, gate_proj, up_proj,
      down_proj;

  DecoderLayer(const LlmConfig& c, const std::string& prefix);
  void params(ParamList& out) const;
  // h [B, T, H] at positions start_pos.. → [B, T, H]. With a cache, this step's k/v are written at
  // start_pos and attention reads all cached positions.
  Tensor forward(const LlmConfig& c, const Tensor& h, int64_t start_pos, Tensor* cache_k,
                 Tensor* cache_v) const;
};

class MiniMindLM {
 public:
  explicit MiniMindLM(const LlmConfig& c);
  const LlmConfig& config() const { return c_; }
  void params(ParamList& out) const;
  void init(Rng& rng);

  Tensor embed(const Tensor& ids) const;  // [B, T] → [B, T, H]
  // Decoder stack and final norm: h [B, T, H] → [B, T, H].
  Tensor forward_hidden(const Tensor& h, int64_t start_pos = 0, KVCache* cache = nullptr) const;
  Tensor logits(const Tensor& hidden) const;  // [..., H] → [..., V]

  Tensor embed_tokens, final_norm, lm_head;  // lm_head undefined when tied
  std::vector<DecoderLayer> layers;

 private:
  LlmConfig c_;
};

}  // namespace minivlm
