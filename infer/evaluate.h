// Held-out evaluation of the masked loss (SPEC §6 `eval`, and periodic eval during training).
// Samples are split across ranks (sample i on rank i mod world) and the sums are reduced, so every
// rank returns the same totals; per-sample rows are gathered on every rank in index order.
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"
#include "dist/communicator.h"
#include "nn/vlm.h"

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
EvalResult evaluate_loss(const MiniMindVLM& model, const JsonlDataset& data, Communicator& comm,
                         const EvalOptions& options);

}  // namespace minivlm
