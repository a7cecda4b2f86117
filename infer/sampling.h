// Next-token choice as MiniMind does it: temperature → repetition penalty → top-k → top-p →
// sample (or argmax when greedy). Seeded with the portable Rng, so a seed reproduces a reply.
#pragma once
#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace minivlm {

struct SamplingOptions {
  bool greedy = false;
  double temperature = 0.85;  // ≤ 0 means greedy
  double top_p = 0.85;        // 1 disables
  int64_t top_k = 50;         // 0 disables
  double repetition_penalty = 1.0;
};

// `logits` [V] of one row; `seen` the ids already in the sequence (prompt and reply).
int32_t choose_token(std::vector<float> logits, const std::vector<int32_t>& seen,
                     const SamplingOptions& o, Rng& rng);

}  // namespace minivlm
