// Data-parallel gradient reduction: the sum over ranks of every parameter's gradient, in buckets
// whose all-reduce starts while backward is still running.
//
// Layout. Buckets hold parameters in the order backward makes their gradients final, so that the
// first bucket fills first; a bucket holds one dtype and device and closes once it reaches
// `bucket_bytes` (a larger parameter gets a bucket of its own). That order is a property of the
// graph, not of the parameter list (the projector comes first in the list but is used first in
// forward, so its gradient is among the last). The first step learns it: rank 0 records the order
// of its step's last backward pass (parameters it never reached follow in reverse list order),
// broadcasts it, and every rank builds the same layout from it, kept for the rest of the run. With
// two ranks a sum is a + b whatever the layout, so runs agree bit for bit; with more, each bucket's
// rounding is fixed by the layout, which only a first step with another graph (a rank-0 batch
// without images) could change. Buckets hold the gradients in their grad_dtype (autograd/node.h):
// a bf16 parameter's gradient is f32, and is summed over ranks in f32.
//
// Overlap. During the backward pass given to backward(..., overlap=true) — this rank's last one of
// the step — the engine's GradReadyHook reports each parameter whose gradient is final. A bucket is
// copied into its flat buffer and its all-reduce started once all its parameters are final and
// every bucket before it has started. Starting strictly in bucket order keeps the ranks'
// collectives in one sequence even when their graphs differ (a rank whose micro-batches hold no
// image never produces the projector's gradient). reduce() starts what is left (a gradient this
// rank never received counts as zeros), waits for all, and points each .grad at its slice of the
// reduced buffer.
#pragma once
#include <cstddef>
#include <memory>
#include <unordered_map>
#include <vector>

#include "dist/communicator.h"
#include "nn/module.h"

namespace minivlm {

// MINIVLM_BUCKET_MB (megabytes, fractions allowed) when set, else 25 MB. Throws naming the value
// when it is not a positive number.
size_t gradient_bucket_bytes();

class GradReducer {
 public:
  // `comm` must outlive the reducer; `params` are the trainable parameters, in the same order on
  // every rank.
  GradReducer(Communicator& comm, ParamList params, size_t bucket_bytes);
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // loss.backward(), reducing gradients as they become final when `overlap` (this rank's last
  // backward pass of the step; earlier passes only accumulate).
  void backward(const Tensor& loss, bool overlap);
  // Completes the step's reduction (a collective: every rank calls it once per step); afterwards
  // every parameter's .grad is the sum over ranks.
  void reduce();

  // The buckets' parameter indices in start order (empty before the first reduce() and alone).
  std::vector<std::vector<size_t>> layout() const;

 private:
  struct Slot {
    size_t param;    // index into params_
    int64_t offset;  // in elements, into the bucket's buffer
  };
  struct Bucket {
    std::vector<Slot> slots;
    Tensor flat;  // [sum of the slots' numel]
    size_t final_count = 0;
    std::unique_ptr<PendingCollective> pending;
  };

  void on_grad_final(TensorImpl& leaf);
  void build_layout();
  void start_ready_buckets();
  void start(Bucket& b);

  Communicator& comm_;
  ParamList params_;
  size_t bucket_bytes_;
  std::unordered_map<const TensorImpl*, size_t> index_;  // parameter identity → index
  std::vector<bool> final_;                              // per parameter, this step
  std::vector<size_t> final_order_;                      // this step's, until the layout exists
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;  // per parameter
  size_t next_ = 0;                // the next bucket to start
};

}  // namespace minivlm
