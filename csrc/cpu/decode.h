// The CPU back-end's decode fast path (nn/decode_step.h): steps with the KV cache, one new token
// per row, outside the op graph (SPEC §1.2 math), registered for the cpu device.
//
// Decoding is bound by the bytes of weights read per token (every matrix once, ~26 M values for
// minimind2-small-v), so a step is one OpenMP parallel region in which the threads split each
// weight matrix by output rows (cpu/gemv.h) and meet at a barrier only where the next product
// needs a whole vector: after q/k/v, after attention, after o_proj, after gate/up, after down.
// The small one-row work is fused around the products: RMSNorm into each thread's own input copy,
// RoPE at one position and the cache write inside attention, the residual adds into o_proj and
// down_proj, SwiGLU into gate/up; the row kernels are the CPU back-end's (cpu/row_kernels.h).
// A mixture-of-experts layer (nn/llm.h moe_forward) computes the router's logits, then every
// expert that some row chose, once for all rows (each expert's weights are read once per token;
// a row that did not choose it weighs its output by 0). Buffers are sized once per Decoder; a
// step allocates nothing.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/decode_step.h"
#include "nn/llm.h"

namespace minivlm {

// DecodeDtype here: f32 shares the model's own tensors (no copy, results match the op path up to
// summation order); bf16 rounded copies; i8 8-bit copies with one scale per row, each product's
// input quantized per row to 8 bits too (cpu/gemv.h).

// One weight [rows, cols] as nn.Linear stores it ([out, in]).
struct DecodeMatrix {
  Tensor w;                    // f32 or bf16; undefined for i8
  std::vector<int8_t> q;       // i8: [rows, cols], w ≈ scale[n] · q[n, :]
  std::vector<float> scale;    // i8: [rows]
  std::vector<int32_t> q_sum;  // i8: [rows], Σ q[n, :]
  int64_t rows = 0, cols = 0;
};

// The LLM's matrices as the decode step reads them. Build once per model and element type; a copy
// does not follow later changes of the model's weights.
struct DecodeWeights {
  struct Expert {
    DecodeMatrix gate, up, down;
  };
  struct Layer {
    DecodeMatrix q, k, v, o, gate, up, down;  // gate, up, down: dense layers only
    DecodeMatrix router;                      // MoE: [E, H], always f32 (the routing is exact)
    std::vector<Expert> experts;              // MoE: E experts; dense: empty
  };
  DecodeDtype dtype = DecodeDtype::f32;
  std::vector<Layer> layers;
  DecodeMatrix lm_head;  // [V, H]: the embedding when tied
  // Threads for one row's step when asked for kAutoDecodeThreads: all of OpenMP's threads if
  // together they stream these weights at least 1.3× as fast as one thread does (measured when
  // built: a few passes each way), else 1. A step reads every weight once and waits at ~5 barriers
  // per layer, so a second core pays only where one core cannot saturate memory bandwidth. A step
  // of several rows does that many times the arithmetic per weight read and takes all threads.
  int auto_threads = 1;

  static std::shared_ptr<const DecodeWeights> build(const MiniMindLM& lm, DecodeDtype dtype);
};

class Decoder final : public DecodeStep {
 public:
  // Buffers for `batch` rows attending to up to `max_len` cached positions; `threads` split each
  // step (0: OpenMP's thread count; kAutoDecodeThreads: the weights' auto_threads for a step of
  // one row, OpenMP's count for more).
  Decoder(const MiniMindLM& lm, std::shared_ptr<const DecodeWeights> weights, int64_t batch,
          int64_t max_len, int threads = 0);

  const float* step_rows(int64_t n, const int64_t* ids, const int64_t* slots,
                         const int64_t* positions, KVCache& cache) override;
  int64_t rows() const override { return batch_; }
  int threads(int64_t rows = 1) const override {
    return rows == 1 ? one_row_threads_ : static_cast<int>(scratch_.size());
  }

 private:
  struct ThreadScratch {
    std::vector<float> x;        // [batch, max(H, nq·hd, I)]: this thread's normalized input
    std::vector<uint16_t> xb;    // the same rounded to bf16
    std::vector<uint8_t> xq;     // or quantized to 8 bits
    std::vector<float> xs;       // with one scale per row, [batch]
    std::vector<float> scores;   // [max_len]
    std::vector<float> route;    // MoE: [batch, E] each row's weight of each expert (0: not chosen)
    std::vector<int64_t> order;  // MoE: [E] experts by decreasing logit
    std::vector<float> expert_weight;  // MoE: [batch] one expert's weight per row
  };
  void run_layer(size_t l, KVCache& cache, int t, int nt);
  // h += the layer's MLP (dense or mixture of experts) of s.x, the normalized h.
  void mlp(const DecodeMatrix& gate, const DecodeMatrix& up, const DecodeMatrix& down,
           const float* row_weights, int t, int nt, ThreadScratch& s);
  void moe(const DecodeWeights::Layer& w, int t, int nt, ThreadScratch& s);
  void attend(size_t l, int64_t i, int64_t g, KVCache& cache, ThreadScratch& s);
  // y[:, n0:n1] (+)= input · w[n0:n1]ᵀ for this thread's share of w's rows; input is
  // [batch, w.cols], y [batch, w.rows].
  void product(const DecodeMatrix& w, const float* in, float* y, bool accumulate, int t, int nt,
               ThreadScratch& s, bool input_ready = false);
  void normalize(const float* h, const Tensor& weight, ThreadScratch& s) const;

  const MiniMindLM& lm_;
  std::shared_ptr<const DecodeWeights> w_;
  int64_t batch_, max_len_;
  // The step in progress: its rows, and each row's cache slot and position.
  int64_t n_ = 0;
  const int64_t* slots_ = nullptr;
  const int64_t* positions_ = nullptr;
  std::vector<float> h_, q_, k_, v_, att_, gate_, up_, router_, logits_;
  std::vector<float> cos_, sin_;        // RoPE at each row's position, [batch, hd/2]
  std::vector<double> inv_freq_;        // RoPE's frequencies, [hd/2]
  std::vector<ThreadScratch> scratch_;  // one per thread of a step of several rows
  int one_row_threads_ = 1;
};

}  // namespace minivlm
