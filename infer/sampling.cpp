#include "infer/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace minivlm {

namespace {
int32_t argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}
}  // namespace

int32_t choose_token(std::vector<float> logits, const std::vector<int32_t>& seen,
                     const SamplingOptions& o, Rng& rng) {
  if (o.greedy || o.temperature <= 0) return argmax(logits);
  const float inv_t = static_cast<float>(1.0 / o.temperature);
  for (float& l : logits) l *= inv_t;
  if (o.repetition_penalty != 1.0) {
    // Each seen token once: positive logits are divided by the penalty, negative ones multiplied.
    std::vector<char> done(logits.size(), 0);
    const float p = static_cast<float>(o.repetition_penalty);
    for (int32_t id : seen) {
      if (id < 0 || static_cast<size_t>(id) >= logits.size() || done[id]) continue;
      done[id] = 1;
      logits[id] = logits[id] > 0 ? logits[id] / p : logits[id] * p;
    }
  }
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  // Descending by logit; ties by id so the order is the same everywhere.
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  size_t keep = order.size();
  if (o.top_k > 0) keep = std::min(keep, static_cast<size_t>(o.top_k));
  // Softmax over the kept tokens, then top-p: drop a token once the mass before it exceeds p
  // (the top token always stays).
  const double mx = logits[order[0]];
  std::vector<double> prob(keep);
  double z = 0;
  for (size_t i = 0; i < keep; ++i) {
    prob[i] = logits[order[i]] == kNegInf ? 0.0 : std::exp(logits[order[i]] - mx);
    z += prob[i];
  }
  if (o.top_p < 1.0) {
    double cum = 0;
    for (size_t i = 0; i < keep; ++i) {
      if (i > 0 && cum > o.top_p) {
        keep = i;
        break;
      }
      cum += prob[i] / z;
    }
    z = 0;
    for (size_t i = 0; i < keep; ++i) z += prob[i];
  }
  double u = rng.uniform() * z;
  for (size_t i = 0; i < keep; ++i) {
    u -= prob[i];
    if (u < 0) return order[i];
  }
  return order[keep - 1];
}

}  // namespace minivlm
