// The training data loader: epoch order, rank sharding, batching and prefetch (SPEC §4, §5).
//
// Order. Epoch e visits the dataset in one permutation drawn from (seed, e) — the same on every
// rank. An optimizer step consumes a global batch of G = micro_batch × grad_accum × world_size
// samples: step s of the epoch takes permutation positions [s·G, (s+1)·G). Inside that slice,
// micro-batch m (0 ≤ m < grad_accum) of rank r takes the micro_batch positions starting at
//
//     s·G + (m·world_size + r)·micro_batch
//
// so the ranks' slices are disjoint, their union is the global batch, and micro-step m of all
// ranks together is one contiguous run of the permutation. The last G-incomplete part of an epoch
// is dropped (steps_per_epoch = ⌊N / G⌋), so every rank takes the same number of steps and
// reaches every collective. Bad samples (SPEC §4.3) leave their micro-batch smaller, never shift
// the slices, so they cannot desynchronize ranks.
//
// Prefetch. Worker threads load, tokenize, decode and preprocess micro-batches ahead of the
// trainer, in exactly this order; the batches, warnings, counters and errors the consumer sees do
// not depend on the number of workers or on timing.
//
// Bad samples. Each skipped sample prints one warning line ("warning: FILE:LINE: skipped sample:
// REASON") when the step holding it is consumed. The loader counts skips per epoch and in total,
// and throws minivlm::Error naming the counts, the fraction and --max-bad-fraction f when
//   - at an epoch end, more than f of the epoch's samples were bad (exactly), or
//   - after any step once kBadFractionMinSamples (100) samples have been seen, the bad ones exceed
//     bad_samples_allowed_so_far: f·seen plus a margin of three standard deviations,
//     3·sqrt(f·seen), so that a few bad samples early in a shuffled dataset within the limit do not
//     end the run, while a dataset far beyond it (say its first samples all bad) stops after 100
//     samples, long before the epoch ends. With f = 0 any bad sample among them stops it.
// Counts are per rank.
//
// Resume. state() is the position of the next step plus the counters; seek(state) on a fresh or
// used loader continues there, so N steps in one go and N/2 + seek + N/2 give the same batches.
//
// Packing (pack_len > 0) changes only how a micro-batch's samples are laid out in rows: a
// micro-batch is still micro_batch samples of the permutation (fewer when some are bad), so the
// slices, the step count, the counters and the resume position are those of the unpacked run.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "data/batch.h"
#include "data/dataset.h"

namespace minivlm {

template <typename T>
class OrderedPrefetcher;

// Fisher–Yates over [0, n) with the portable Rng seeded from (seed, epoch).
std::vector<uint32_t> epoch_permutation(size_t n, uint64_t seed, int64_t epoch);

// The running bad-sample check starts once this many samples have been seen (this rank).
inline constexpr int64_t kBadFractionMinSamples = 100;
// How many bad samples among `seen` the running check allows (infinity below the minimum count).
double bad_samples_allowed_so_far(double max_bad_fraction, int64_t seen);

struct LoaderOptions {
  int64_t micro_batch = 1;  // samples per micro-batch per rank (batch_size)
  int64_t grad_accum = 1;   // micro-batches per optimizer step
  int64_t world_size = 1;
  int64_t rank = 0;
  uint64_t seed = 42;
  int prefetch_depth = 4;  // micro-batches loaded ahead of the consumer
  int workers = 1;         // threads loading them
  double max_bad_fraction = 0.01;
  // > 0: pack each micro-batch's samples into rows of at most this many tokens (collate's
  // pack_len; --pack gives max_seq_len). The slices, and so the resume position, do not change.
  int64_t pack_len = 0;
  // Receives each warning line (no newline). Unset: written to stderr.
  std::function<void(const std::string&)> warn;
};

struct LoaderState {
  int64_t epoch = 0;
  int64_t step_in_epoch = 0;  // the next step to take
  int64_t skipped_this_epoch = 0;
  int64_t skipped_total = 0;
  int64_t seen_total = 0;    // samples of the steps taken, bad ones included (this rank)
  int64_t global_batch = 0;  // G of the run that wrote the state; 0: not checked by seek

  nlohmann::json to_json() const;
  // Throws minivlm::Error naming a missing or mistyped key.
  static LoaderState from_json(const nlohmann::json& j);
  bool operator==(const LoaderState&) const = default;
};

struct EpochSummary {
  int64_t epoch = 0;
  int64_t samples = 0;  // seen by this rank in the epoch
  int64_t skipped = 0;
  std::string line() const;  // "epoch 3: 4096 samples, 2 skipped (0.05%)"
};

struct Step {
  int64_t epoch = 0;
  int64_t step_in_epoch = 0;
  std::vector<MicroBatch> micro;          // grad_accum micro-batches of this rank, in order
  std::optional<EpochSummary> epoch_end;  // set on the last step of an epoch

  int64_t supervised_tokens() const;  // this rank's, over its micro-batches
  int64_t skipped() const;
};

class Loader {
 public:
  // The dataset must outlive the loader. Throws minivlm::Error on bad options or when the dataset
  // holds less than one global batch.
  Loader(const Dataset& dataset, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  int64_t global_batch() const { return global_batch_; }
  int64_t steps_per_epoch() const { return steps_per_epoch_; }

  // This rank's micro-batches of the next step; epochs follow one another without end. Rethrows
  // an exception of the loading threads; throws minivlm::Error past max_bad_fraction.
  Step next_step();

  LoaderState state() const;
  // Continues at `state` (drops what was prefetched). Throws when it was written with another
  // global batch size.
  void seek(const LoaderState& state);

  // Dataset indices of this rank's micro-batch m of step s in epoch e (no loading).
  std::vector<int64_t> slice(int64_t epoch, int64_t step, int64_t m) const;

 private:
  struct Produced;
  Produced produce(int64_t k, const LoaderState& start) const;
  std::shared_ptr<const std::vector<uint32_t>> permutation(int64_t epoch) const;
  void emit(const std::string& warning) const;
  void check_bad_fraction(int64_t skipped, int64_t seen, double allowed,
                          const std::string& scope) const;

  const Dataset& dataset_;
  LoaderOptions opt_;
  int64_t global_batch_ = 0;
  int64_t steps_per_epoch_ = 0;
  LoaderState state_;

  mutable std::mutex perm_mu_;
  // The permutations of the (at most two) epochs the workers are in.
  mutable std::vector<std::pair<int64_t, std::shared_ptr<const std::vector<uint32_t>>>> perms_;

  std::unique_ptr<OrderedPrefetcher<Produced>> prefetch_;  // started by the first next_step
};

}  // namespace minivlm
