// One optimizer step of data-parallel training, in llm.c's order (gpt2_forward +
// gpt2_backward_and_reduce, gpt2_calculate_grad_norm, gpt2_update):
//
//   forward_backward_and_reduce  N = the step's supervised tokens over all ranks (one all-reduce);
//                                per micro-batch, forward with the loss Σ token losses / N and
//                                backward accumulating into .grad; then every gradient and the
//                                loss summed over ranks. The loss is then the mean over every
//                                supervised token of the step (SPEC §4.2), and loss and gradients
//                                do not depend on how the step is split across micro-batches and
//                                processes. A MoE model's router loss, a mean over each
//                                micro-batch's tokens, joins the loss divided by the step's
//                                micro-batch count over all ranks: its gradient is the mean of the
//                                micro-batches' (data-parallel PyTorch's averaging).
//   grad_norm                    the global L2 norm of the summed gradients, before clipping.
//   update                       when loss and norm are finite, AdamW at the scheduled lr on the
//                                gradients scaled by the clipping factor; otherwise a skipped step
//                                that changes neither weights nor optimizer state (moments, master
//                                weights, step count), on the first step of a run or of a resumed
//                                one alike. A norm after clipping above kMaxAppliedGradNorm counts
//                                as non-finite too: squared in fp32 for the second moment, such a
//                                gradient would overflow it to infinity. Gradients are zeroed
//                                either way.
//
// The gradient reduction overlaps this rank's last backward pass of the step (dist/grad_reducer.h).
// Every rank runs every step, also with no micro-batch to compute: it still takes part in the
// collectives.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

#include "dist/communicator.h"
#include "dist/grad_reducer.h"
#include "nn/vlm.h"
#include "optim/adamw.h"

namespace minivlm {

struct Step;  // data/loader.h

// One micro-batch of this rank. `batch` is null for a micro-batch whose samples were all bad: it
// is not computed, and counts no tokens.
struct MicroInput {
  const VlmBatch* batch = nullptr;
  int64_t supervised_tokens = 0;  // batch->supervised_tokens()
};

// sqrt(FLT_MAX) ≈ 1.8e19, rounded down: every gradient element of a clipped norm below it
// squares to a finite fp32 value.
inline constexpr double kMaxAppliedGradNorm = 1e19;

struct StepResult {
  double loss = 0;       // Σ token losses over micro-batches and ranks / tokens
  double aux_loss = 0;   // MoE: the router loss, mean over the step's micro-batches and ranks
  int64_t tokens = 0;    // supervised tokens of the step over all ranks
  double grad_norm = 0;  // of the summed gradients, before clipping
  bool applied = false;  // false: loss or norm not finite (or too large), the step was skipped
};

class TrainStep {
 public:
  // Each argument must outlive the step. The optimizer's parameters are the trainable ones, in the
  // same order on every rank; gradients are reduced over `comm` in buckets of `bucket_bytes`, and
  // clipped to a global norm of `grad_clip` (≤ 0: not clipped).
  TrainStep(const MiniMindVLM& model, AdamW& optim, Communicator& comm, double grad_clip,
            size_t bucket_bytes = gradient_bucket_bytes());
  TrainStep(const TrainStep&) = delete;
  TrainStep& operator=(const TrainStep&) = delete;

  // The whole step: the three parts below in order.
  StepResult run(std::span<const MicroInput> micro, double lr);
  // The loader's micro-batches of this rank.
  StepResult run(const Step& step, double lr);

  // Leaves the summed gradients in .grad; returns the loss and the token count (no norm yet).
  StepResult forward_backward_and_reduce(std::span<const MicroInput> micro);
  double grad_norm() const;
  // Returns whether the update was applied (loss and grad_norm of `r` finite).
  bool update(const StepResult& r, double lr);

 private:
  const MiniMindVLM& model_;
  AdamW& optim_;  // its params() are the trainable parameters
  Communicator& comm_;
  GradReducer reducer_;
  double grad_clip_;
};

}  // namespace minivlm
