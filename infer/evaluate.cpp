#include "infer/evaluate.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <sstream>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "autograd/node.h"
#include "data/batch.h"
#include "infer/generate.h"
#include "ops/ops.h"
#include "text/chat.h"

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

EvalResult evaluate_loss(const MiniMindVLM& model, const Dataset& data, Communicator& comm,
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
    MicroBatch mb = collate(pending, idx, data.pad_id(), data.images().tile_size());
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

namespace minivlm {

std::string normalize_answer(const std::string& s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool exact_match(const std::string& prediction, const std::string& reference) {
  return normalize_answer(prediction) == normalize_answer(reference);
}

double token_f1(const std::string& prediction, const std::string& reference) {
  auto words = [](const std::string& s) {
    std::map<std::string, int64_t> bag;
    std::istringstream in(normalize_answer(s));
    for (std::string w; in >> w;) ++bag[w];
    return bag;
  };
  const auto p = words(prediction), r = words(reference);
  int64_t np = 0, nr = 0, common = 0;
  for (const auto& [w, n] : p) np += n;
  for (const auto& [w, n] : r) {
    nr += n;
    if (auto it = p.find(w); it != p.end()) common += std::min(n, it->second);
  }
  if (np == 0 && nr == 0) return 1.0;
  if (common == 0) return 0.0;
  const double precision = static_cast<double>(common) / static_cast<double>(np);
  const double recall = static_cast<double>(common) / static_cast<double>(nr);
  return 2 * precision * recall / (precision + recall);
}

GenerationEvalResult evaluate_generation(const MiniMindVLM& model, const Tokenizer& tokenizer,
                                         const Dataset& data, Communicator& comm,
                                         const GenerationEvalOptions& options) {
  const int64_t n = options.max_samples > 0
                        ? std::min<int64_t>(options.max_samples, static_cast<int64_t>(data.size()))
                        : static_cast<int64_t>(data.size());
  const int64_t S = data.images().tile_size();
  GenerationOptions gen;
  gen.max_new_tokens = options.max_new_tokens;
  gen.sampling.greedy = true;
  gen.eos_id = end_of_turn_id(tokenizer);

  // This rank's records, grouped by prompt length so that each batch decodes equal-length rows.
  struct Item {
    GenerationEval row;
    std::vector<int32_t> prompt;
    std::vector<float> pixels;  // [tiles, 3, S, S]
    int64_t images = 0;
    std::vector<int64_t> tiles;  // per image
  };
  std::vector<Item> items;
  for (int64_t i = comm.rank(); i < n; i += comm.world_size()) {
    Item it;
    it.row.index = i;
    PromptResult pr = data.load_prompt(static_cast<size_t>(i));
    if (!pr.record) {
      it.row.skipped = true;
      it.row.skip_reason = pr.skip_reason;
      std::fprintf(stderr, "%s\n",
                   data.skip_warning(static_cast<size_t>(i), pr.skip_reason).c_str());
    } else {
      it.row.reference = pr.record->reference;
      ProcessedImages& images = pr.record->images;
      it.prompt = encode_generation_prompt(tokenizer, pr.record->context, images.prompts,
                                           data.images().image_token());
      it.pixels = std::move(images.pixels);
      if (options.blank_images) std::fill(it.pixels.begin(), it.pixels.end(), 0.0f);
      it.images = images.count();
      it.tiles = std::move(images.tiles_per_image);
    }
    items.push_back(std::move(it));
  }
  std::map<size_t, std::vector<size_t>> by_length;
  for (size_t k = 0; k < items.size(); ++k)
    if (!items[k].row.skipped) by_length[items[k].prompt.size()].push_back(k);
  for (const auto& [len, group] : by_length) {
    for (size_t start = 0; start < group.size(); start += static_cast<size_t>(options.batch_size)) {
      const size_t end = std::min(group.size(), start + static_cast<size_t>(options.batch_size));
      std::vector<std::vector<int32_t>> prompts;
      std::vector<float> px;
      RowImages images;
      for (size_t g = start; g < end; ++g) {
        const Item& it = items[group[g]];
        prompts.push_back(it.prompt);
        px.insert(px.end(), it.pixels.begin(), it.pixels.end());
        images.per_row.push_back(it.images);
        images.tiles_per_image.insert(images.tiles_per_image.end(), it.tiles.begin(),
                                      it.tiles.end());
      }
      const int64_t tiles = static_cast<int64_t>(px.size()) / (3 * S * S);
      if (tiles > 0) images.pixels = Tensor::from_vector(px, {tiles, 3, S, S});
      const auto replies = generate(model, prompts, images, gen);
      for (size_t g = start; g < end; ++g) {
        GenerationEval& row = items[group[g]].row;
        row.prediction = tokenizer.decode(replies[g - start], /*skip_special=*/true);
        row.exact = exact_match(row.prediction, row.reference);
        row.f1 = token_f1(row.prediction, row.reference);
      }
    }
  }

  nlohmann::json js = nlohmann::json::array();
  for (const Item& it : items) {
    const GenerationEval& r = it.row;
    js.push_back({r.index, r.skipped, r.skip_reason, r.prediction, r.reference, r.exact, r.f1});
  }
  GenerationEvalResult res;
  res.rows.resize(static_cast<size_t>(n));
  for (const std::string& part : comm.all_gather(js.dump())) {
    for (const auto& e : nlohmann::json::parse(part)) {
      GenerationEval r;
      r.index = e[0].get<int64_t>();
      r.skipped = e[1].get<bool>();
      r.skip_reason = e[2].get<std::string>();
      r.prediction = e[3].get<std::string>();
      r.reference = e[4].get<std::string>();
      r.exact = e[5].get<bool>();
      r.f1 = e[6].get<double>();
      res.rows[static_cast<size_t>(r.index)] = r;
    }
  }
  for (const GenerationEval& r : res.rows) {
    if (r.skipped) continue;
    ++res.samples;
    res.exact_match += r.exact ? 1.0 : 0.0;
    res.token_f1 += r.f1;
  }
  if (res.samples > 0) {
    res.exact_match /= static_cast<double>(res.samples);
    res.token_f1 /= static_cast<double>(res.samples);
  }
  return res;
}

}  // namespace minivlm
