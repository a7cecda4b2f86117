#include "nn/vlm.h"

#include "autograd/node.h"
#include "ops/ops.h"

namespace minivlm {

namespace {

// The tiles of each sample's images: one per image unless batch.tiles_per_image says otherwise.
std::vector<int64_t> tiles_per_sample(const VlmBatch& batch) {
  const std::vector<int64_t>& tiles = batch.tiles_per_image;
  int64_t images = 0;
  for (int64_t n : batch.images_per_sample) images += n;
  MV_CHECK(tiles.empty() || static_cast<int64_t>(tiles.size()) == images, "batch: ", tiles.size(),
           " tile counts for ", images, " images");
  std::vector<int64_t> out;
  size_t k = 0;
  for (int64_t n : batch.images_per_sample) {
    int64_t t = 0;
    for (int64_t i = 0; i < n; ++i) t += tiles.empty() ? 1 : tiles[k++];
    out.push_back(t);
  }
  return out;
}

}  // namespace

int64_t VlmBatch::supervised_tokens() const {
  const std::vector<int64_t> m = label_mask.to_int_vector();
  const int64_t B = label_mask.size(0), T = label_mask.size(1);
  int64_t n = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 1; t < T; ++t) n += m[b * T + t] != 0;
  return n;
}

MiniMindVLM::MiniMindVLM(const ModelConfig& c, int64_t image_token_id)
    : vision(make_vision_tower(c.vision)),
      projector(make_projector(c)),
      llm(c.llm),
      c_(c),
      image_token_id_(image_token_id) {
  MV_CHECK(image_token_id >= 0 && image_token_id < c.llm.vocab_size, "image token id ",
           image_token_id, " is outside the vocabulary of ", c.llm.vocab_size);
}

ParamList MiniMindVLM::params() const {
  ParamList out;
  llm.params(out);
  projector->params(out);
  vision->params(out);
  return out;
}

ParamList MiniMindVLM::trainable_params() const {
  ParamList out;
  for (NamedTensor& p : params())
    if (p.tensor.requires_grad()) out.push_back(p);
  return out;
}

void MiniMindVLM::init(uint64_t seed) {
  // Independent streams per part, so changing one part's size leaves the others' values alone.
  Rng llm_rng(seed), proj_rng(seed ^ 0x9e3779b97f4a7c15ull), vis_rng(seed ^ 0xc2b2ae3d27d4eb4full);
  llm.init(llm_rng);
  projector->init(proj_rng);
  vision->init(vis_rng);
}

Tensor MiniMindVLM::image_rows(const Tensor& pixels) const {
  const Tensor feats = vision_cache_ ? vision_cache_->features(*vision, pixels)
                                     : vision->features(pixels);       // [n, G², D]
  return projector->forward(feats).reshape({-1, c_.llm.hidden_size});  // [n, N, H] → [n·N, H]
}

Tensor MiniMindVLM::embed(const VlmBatch& batch) const {
  const int64_t B = batch.ids.size(0), T = batch.ids.size(1), H = c_.llm.hidden_size;
  const int64_t N = c_.tokens_per_image();
  MV_CHECK(static_cast<int64_t>(batch.images_per_sample.size()) == B,
           "batch: ", batch.images_per_sample.size(), " image counts for ", B, " samples");
  const std::vector<int64_t> tiles = tiles_per_sample(batch);
  const std::vector<int64_t> ids = batch.ids.to_int_vector();
  // Row indices (into [B·T, H]) of every image token, run by run, sample by sample.
  std::vector<int64_t> rows;
  for (int64_t b = 0; b < B; ++b) {
    int64_t runs = 0;
    for (int64_t t = 0; t < T;) {
      if (ids[b * T + t] != image_token_id_) {
        ++t;
        continue;
      }
      int64_t end = t;
      while (end < T && ids[b * T + end] == image_token_id_) ++end;
      MV_CHECK(end - t == N, "sample ", b, ": a run of ", end - t, " image tokens at position ", t,
               " (expected ", N, " per tile)");
      for (int64_t i = t; i < end; ++i) rows.push_back(b * T + i);
      ++runs;
      t = end;
    }
    MV_CHECK(runs == tiles[b], "sample ", b, ": ", runs, " runs of image tokens for ",
             batch.images_per_sample[b], " images of ", tiles[b], " tiles (one run per tile)");
  }
  Tensor h = llm.embed(batch.ids).reshape({B * T, H});
  if (!rows.empty()) {
    MV_CHECK(
        batch.pixels.defined() && batch.pixels.size(0) * N == static_cast<int64_t>(rows.size()),
        "batch: ", rows.size() / N, " tiles referenced by tokens but ",
        batch.pixels.defined() ? batch.pixels.size(0) : 0, " given");
    const Tensor idx = Tensor::from_vector(rows, {static_cast<int64_t>(rows.size())});
    h = ops::scatter_rows(h, idx, image_rows(batch.pixels));
  }
  return h.reshape({B, T, H});
}

Tensor shifted_targets(const Tensor& ids, const Tensor& label_mask) {
  MV_CHECK(ids.shape() == label_mask.shape(), "label mask ", shape_str(label_mask.shape()),
           " does not match ids ", shape_str(ids.shape()));
  const int64_t B = ids.size(0), T = ids.size(1);
  const std::vector<int64_t> iv = ids.to_int_vector(), mv = label_mask.to_int_vector();
  std::vector<int64_t> targets(static_cast<size_t>(B * T), ops::kIgnoreIndex);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t + 1 < T; ++t)
      if (mv[b * T + t + 1] != 0) targets[b * T + t] = iv[b * T + t + 1];
  return Tensor::from_vector(targets, {B * T});
}

VlmOutput MiniMindVLM::forward(const VlmBatch& batch, double denominator, Logits logits) const {
  const int64_t B = batch.ids.size(0), T = batch.ids.size(1), V = c_.llm.vocab_size;
  MV_CHECK(T <= c_.llm.max_position_embeddings, "sequence of ", T,
           " tokens exceeds max_position_embeddings ", c_.llm.max_position_embeddings);
  VlmOutput out;
  const bool with_aux = c_.llm.use_moe && c_.llm.router_aux_loss_coef > 0 && grad_enabled();
  const PackedRows packed =
      batch.seq_bounds.empty() ? PackedRows{} : PackedRows::from_bounds(batch.seq_bounds, T);
  const Tensor hidden =
      llm.forward_hidden(embed(batch), 0, nullptr, with_aux ? &out.aux_loss : nullptr,
                         batch.seq_bounds.empty() ? nullptr : &packed);
  const Tensor targets = shifted_targets(batch.ids, batch.label_mask);
  // Without logits, only rows with a target reach the head: an ignored row adds nothing to the
  // loss or to any gradient, so leaving it out changes neither. (A batch without targets keeps
  // the full path, so that its zero loss still reaches every input.)
  std::vector<int64_t> rows, kept;
  if (logits == Logits::none) {
    const std::vector<int64_t> tv = targets.to_int_vector();
    for (int64_t r = 0; r < B * T; ++r)
      if (tv[static_cast<size_t>(r)] != ops::kIgnoreIndex) {
        rows.push_back(r);
        kept.push_back(tv[static_cast<size_t>(r)]);
      }
  }
  if (rows.empty()) {
    out.logits = llm.logits(hidden);
    out.loss =
        ops::cross_entropy(out.logits.reshape({B * T, V}), targets, ops::kIgnoreIndex, denominator);
    if (logits == Logits::none) out.logits = Tensor();
    return out;
  }
  const int64_t M = static_cast<int64_t>(rows.size()), H = hidden.size(2);
  const Tensor flat = hidden.reshape({B * T, H});
  const Tensor h = M == B * T ? flat : ops::gather_rows(flat, Tensor::from_vector(rows, {M}));
  out.loss = ops::cross_entropy(llm.logits(h), Tensor::from_vector(kept, {M}), ops::kIgnoreIndex,
                                denominator);
  return out;
}

}  // namespace minivlm
