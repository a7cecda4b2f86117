// Held-out evaluation of the masked loss (SPEC §6 `eval`, and periodic eval during training).
// Samples are split across ranks (sample i on rank i mod world) and the sums are reduced, so every
// rank returns the same totals; per-sample rows are gathered on every rank in index order.
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"
#include "dist/communicator.h"
#include "nn/vlm.h"
#include "text/tokenizer.h"

namespace minivlm {

struct SampleEval {
  int64_t index = 0;  // record index in the file (non-empty lines, from 0)
  bool skipped = false;
  std::string skip_reason;
  double loss_sum = 0;  // Σ token losses over the sample's supervised tokens
  int64_t tokens = 0;   // supervised tokens
  double mean_loss() const { return tokens > 0 ? loss_sum / static_cast<double>(tokens) : 0.0; }
};

struct EvalResult {
  int64_t samples = 0, skipped = 0, tokens = 0;
  double loss_sum = 0;
  std::vector<SampleEval> rows;  // every record, in index order
  double loss() const { return tokens > 0 ? loss_sum / static_cast<double>(tokens) : 0.0; }
  double ppl() const;
};

struct EvalOptions {
  int64_t batch_size = 8;
  int64_t max_samples = 0;    // > 0: only the first records
  bool blank_images = false;  // every image replaced by a uniform one (the dataset mean color)
};

// Warnings for skipped records go to stderr from the rank that read them.
EvalResult evaluate_loss(const MiniMindVLM& model, const Dataset& data, Communicator& comm,
                         const EvalOptions& options);

// Answer comparison of SPEC §6: trimmed, lower-cased, whitespace collapsed.
std::string normalize_answer(const std::string& s);
bool exact_match(const std::string& prediction, const std::string& reference);
// F1 of the bags of whitespace-separated words of the normalized answers (1 when both are empty).
double token_f1(const std::string& prediction, const std::string& reference);

struct GenerationEval {
  int64_t index = 0;
  bool skipped = false;
  std::string skip_reason, prediction, reference;
  bool exact = false;
  double f1 = 0;
};

struct GenerationEvalResult {
  std::vector<GenerationEval> rows;  // every record, in index order
  int64_t samples = 0;
  double exact_match = 0, token_f1 = 0;  // means over the samples that were not skipped
};

struct GenerationEvalOptions {
  int64_t batch_size = 16;  // prompts of equal length are decoded together
  int64_t max_new_tokens = 64;
  int64_t max_samples = 0;
  bool blank_images = false;
};

// Greedy replies to every record's last user turn, compared with its last assistant message.
GenerationEvalResult evaluate_generation(const MiniMindVLM& model, const Tokenizer& tokenizer,
                                         const Dataset& data, Communicator& comm,
                                         const GenerationEvalOptions& options);

}  // namespace minivlm
