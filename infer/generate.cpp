#include "infer/generate.h"

#include <algorithm>

#include "autograd/node.h"
#include "ops/ops.h"

namespace minivlm {

namespace {

using Clock = std::chrono::steady_clock;

Tensor ids_tensor(const std::vector<std::vector<int32_t>>& rows) {
  const int64_t B = static_cast<int64_t>(rows.size()), T = static_cast<int64_t>(rows[0].size());
  std::vector<int64_t> flat;
  flat.reserve(static_cast<size_t>(B * T));
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return Tensor::from_vector(flat, {B, T});
}

// Logits of the last position of every row: [B, V] as host vectors.
std::vector<std::vector<float>> last_logits(const MiniMindVLM& model, const Tensor& hidden) {
  const int64_t B = hidden.size(0), T = hidden.size(1);
  const Tensor last = hidden.narrow(1, T - 1, 1).contiguous();  // [B, 1, H]
  const std::vector<float> all = model.llm.logits(last).to_float_vector();
  const size_t V = all.size() / static_cast<size_t>(B);
  std::vector<std::vector<float>> out;
  for (int64_t b = 0; b < B; ++b)
    out.emplace_back(all.begin() + static_cast<std::ptrdiff_t>(b * V),
                     all.begin() + static_cast<std::ptrdiff_t>((b + 1) * V));
  return out;
}

}  // namespace

std::vector<std::vector<int32_t>> generate(const MiniMindVLM& model,
                                           const std::vector<std::vector<int32_t>>& prompts,
                                           const RowImages& images, const GenerationOptions& o,
                                           const std::function<void(size_t, int32_t)>& on_token,
                                           GenerationStats* stats) {
  NoGradGuard no_grad;
  MV_CHECK(!prompts.empty(), "generate: no prompt");
  const size_t B = prompts.size();
  const int64_t T = static_cast<int64_t>(prompts[0].size());
  for (const auto& p : prompts)
    MV_CHECK(static_cast<int64_t>(p.size()) == T,
             "generate: prompts of one call must have equal lengths");
  MV_CHECK(T > 0, "generate: empty prompt");
  const int64_t ctx = model.config().llm.max_position_embeddings;
  MV_CHECK(T + o.max_new_tokens <= ctx, "the prompt has ", T, " tokens; with up to ",
           o.max_new_tokens, " new tokens that exceeds the model's context of ", ctx,
           " (max_position_embeddings). HINT: shorten the prompt or lower --max-new-tokens");

  VlmBatch batch;
  batch.ids = ids_tensor(prompts);
  batch.label_mask = Tensor::zeros({static_cast<int64_t>(B), T}, DType::i64);
  batch.pixels = images.pixels;
  batch.images_per_sample = images.per_row;
  batch.tiles_per_image = images.tiles_per_image;

  std::vector<std::vector<int32_t>> seqs = prompts, replies(B);
  std::vector<char> done(B, 0);
  Rng rng(o.seed);
  GenerationStats st;
  st.prompt_tokens = T * static_cast<int64_t>(B);

  const auto t0 = Clock::now();
  KVCache cache;
  std::unique_ptr<DecodeStep> decoder;
  std::vector<std::vector<float>> logits;
  Tensor prompt_embeds = model.embed(batch);  // the vision tower runs here, once
  if (o.use_cache) {
    const int64_t max_len = T + o.max_new_tokens;
    cache = KVCache::allocate_for(model.llm, static_cast<int64_t>(B), max_len);
    decoder = make_decode_step(model.llm, static_cast<int64_t>(B), max_len,
                               {o.decode_dtype, o.decode_threads, o.decode_weights});
    logits = last_logits(model, model.llm.forward_hidden(prompt_embeds, 0, &cache));
  } else {
    logits = last_logits(model, model.llm.forward_hidden(prompt_embeds));
  }
  const auto t1 = Clock::now();
  st.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();

  const int64_t H = model.config().llm.hidden_size;
  for (int64_t step = 0; step < o.max_new_tokens; ++step) {
    std::vector<int32_t> next(B, o.eos_id);
    bool all_done = true;
    for (size_t b = 0; b < B; ++b) {
      if (done[b]) continue;  // finished rows keep feeding eos, as MiniMind does
      next[b] = choose_token(logits[b], seqs[b], o.sampling, rng);
      if (next[b] == o.eos_id) {
        done[b] = 1;
      } else {
        replies[b].push_back(next[b]);
        ++st.new_tokens;
        if (on_token) on_token(b, next[b]);
      }
      all_done = all_done && done[b];
    }
    for (size_t b = 0; b < B; ++b) seqs[b].push_back(next[b]);
    if (all_done || step + 1 == o.max_new_tokens) break;
    std::vector<int64_t> ids(next.begin(), next.end());
    if (decoder) {
      const float* all = decoder->step(ids.data(), cache);
      for (size_t b = 0; b < B; ++b)
        std::copy_n(all + b * logits[b].size(), logits[b].size(), logits[b].begin());
    } else {
      // Recompute everything: the prompt rows (with image rows merged) and every new token.
      std::vector<std::vector<int32_t>> grown;
      for (const auto& s : seqs) grown.emplace_back(s.begin() + T, s.end());
      const Tensor tail = model.llm.embed(ids_tensor(grown));
      const Tensor h =
          ops::concat({prompt_embeds, tail.reshape({static_cast<int64_t>(B), -1, H})}, 1);
      logits = last_logits(model, model.llm.forward_hidden(h));
    }
  }
  st.decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  if (stats) *stats = st;
  return replies;
}

}  // namespace minivlm
