#include "infer/evaluate.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "autograd/node.h"
#include "data/batch.h"
#include "ops/ops.h"

namespace minivlm {

double EvalResult::ppl() const { return std::exp(loss()); }

namespace {

// Per-sample summed losses of one padded batch.
void score_batch(const MiniMindVLM& model, const MicroBatch& mb, std::vector<SampleEval*>& rows) {
  const VlmOutput out = model.forward(mb.batch);
  const int64_t B = mb.batch.ids.size(0), T = mb.batch.ids.size(1),
                V = model.config().llm.vocab_size;
  const Tensor targets = shifted_targets(mb.batch.ids, mb.batch.label_mask).reshape({B, T});
  for (int64_t b = 0; b < B; ++b) {
    const Tensor t = targets.select(0, b).contiguous();
    int64_t n = 0;
    for (int64_t v : t.to_int_vector()) n += v != ops::kIgnoreIndex;
    rows[b]->tokens = n;
    rows[b]->loss_sum = n > 0 ? ops::cross_entropy(out.logits.select(0, b).reshape({T, V}), t,
                                                   ops::kIgnoreIndex, 1.0)
                                    .item()
                              : 0.0;
  }
}

}  // namespace

EvalResult evaluate_loss(const MiniMindVLM& model, const JsonlDataset& data, Communicator& comm,
                         const EvalOptions& options) {
  const int64_t batch_size = options.batch_size, max_samples = options.max_samples;
  NoGradGuard no_grad;
  const int64_t n = max_samples > 0
                        ? std::min<int64_t>(max_samples, static_cast<int64_t>(data.size()))
                        : static_cast<int64_t>(data.size());
  std::vector<SampleEval> mine;
  for (int64_t i = comm.rank(); i < n; i += comm.world_size()) {
    SampleEval row;
    row.index = i;
    mine.push_back(row);
  }
  std::vector<Sample> pending;
  std::vector<SampleEval*> pending_rows;
  auto flush = [&] {
    if (pending.empty()) return;
    std::vector<int64_t> idx;
    for (SampleEval* r : pending_rows) idx.push_back(r->index);
    MicroBatch mb = collate(pending, idx, data.pad_id(), data.format().image_size);
    // Normalized pixels of 0 are the normalization mean: an image with no content.
    if (options.blank_images && mb.batch.pixels.defined()) mb.batch.pixels.zero_();
    score_batch(model, mb, pending_rows);
    pending.clear();
    pending_rows.clear();
  };
  for (SampleEval& row : mine) {
    SampleResult r = data.load(static_cast<size_t>(row.index));
    if (!r.sample) {
      row.skipped = true;
      row.skip_reason = r.skip_reason;
      std::fprintf(stderr, "%s\n",
                   data.skip_warning(static_cast<size_t>(row.index), r.skip_reason).c_str());
      continue;
    }
    pending.push_back(std::move(*r.sample));
    pending_rows.push_back(&row);
    if (static_cast<int64_t>(pending.size()) == batch_size) flush();
  }
  flush();

  // Gather every rank's rows (small) and rebuild the index order on every rank.
  nlohmann::json js = nlohmann::json::array();
  for (const SampleEval& r : mine)
    js.push_back({r.index, r.skipped, r.skip_reason, r.loss_sum, r.tokens});
  EvalResult res;
  res.rows.resize(static_cast<size_t>(n));
  for (const std::string& part : comm.all_gather(js.dump())) {
    for (const auto& e : nlohmann::json::parse(part)) {
      SampleEval r;
      r.index = e[0].get<int64_t>();
      r.skipped = e[1].get<bool>();
      r.skip_reason = e[2].get<std::string>();
      r.loss_sum = e[3].get<double>();
      r.tokens = e[4].get<int64_t>();
      res.rows[static_cast<size_t>(r.index)] = r;
    }
  }
  for (const SampleEval& r : res.rows) {
    if (r.skipped) {
      ++res.skipped;
      continue;
    }
    ++res.samples;
    res.tokens += r.tokens;
    res.loss_sum += r.loss_sum;
  }
  return res;
}

}  // namespace minivlm
