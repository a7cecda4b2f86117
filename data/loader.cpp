#include "data/loader.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"
#include "data/prefetch.h"

namespace minivlm {

using nlohmann::json;

std::vector<uint32_t> epoch_permutation(size_t n, uint64_t seed, int64_t epoch) {
  MV_CHECK(n <= std::numeric_limits<uint32_t>::max(), "epoch_permutation: ", n,
           " samples exceed 2^32");
  // Rng runs its seed through splitmix64, so nearby (seed, epoch) pairs give unrelated streams.
  Rng rng(seed ^ (0x9e3779b97f4a7c15ull * (static_cast<uint64_t>(epoch) + 1)));
  std::vector<uint32_t> p(n);
  std::iota(p.begin(), p.end(), 0u);
  for (size_t i = n; i > 1; --i) std::swap(p[i - 1], p[rng.below(i)]);
  return p;
}

json LoaderState::to_json() const {
  return {{"epoch", epoch},
          {"step_in_epoch", step_in_epoch},
          {"skipped_this_epoch", skipped_this_epoch},
          {"skipped_total", skipped_total},
          {"seen_total", seen_total},
          {"global_batch", global_batch}};
}

LoaderState LoaderState::from_json(const json& j) {
  MV_CHECK(j.is_object(), "loader state: expected a JSON object, got ", j.type_name());
  LoaderState s;
  const auto field = [&](const char* key, int64_t& out) {
    const auto it = j.find(key);
    MV_CHECK(it != j.end(), "loader state: missing key '", key, "'");
    MV_CHECK(it->is_number_integer(), "loader state: '", key, "' must be an integer, got ",
             it->dump());
    out = it->get<int64_t>();
    MV_CHECK(out >= 0, "loader state: '", key, "' must not be negative, got ", out);
  };
  field("epoch", s.epoch);
  field("step_in_epoch", s.step_in_epoch);
  field("skipped_this_epoch", s.skipped_this_epoch);
  field("skipped_total", s.skipped_total);
  field("seen_total", s.seen_total);
  field("global_batch", s.global_batch);
  return s;
}

std::string EpochSummary::line() const {
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.2f%%", samples > 0 ? 100.0 * skipped / samples : 0.0);
  return detail::str_cat("epoch ", epoch, ": ", samples, " samples, ", skipped, " skipped (", pct,
                         ")");
}

int64_t Step::supervised_tokens() const {
  int64_t n = 0;
  for (const MicroBatch& mb : micro) n += mb.supervised_tokens;
  return n;
}

int64_t Step::skipped() const {
  int64_t n = 0;
  for (const MicroBatch& mb : micro) n += mb.skipped;
  return n;
}

// One micro-batch as the workers hand it over: the warnings wait for the consumer so that they
// come out in order, once, and only for steps actually taken.
struct Loader::Produced {
  MicroBatch batch;
  std::vector<std::string> warnings;
};

Loader::Loader(const Dataset& dataset, LoaderOptions options)
    : dataset_(dataset), opt_(std::move(options)) {
  MV_CHECK(opt_.micro_batch >= 1, "loader: micro_batch must be at least 1, got ", opt_.micro_batch);
  MV_CHECK(opt_.grad_accum >= 1, "loader: grad_accum must be at least 1, got ", opt_.grad_accum);
  MV_CHECK(opt_.world_size >= 1, "loader: world_size must be at least 1, got ", opt_.world_size);
  MV_CHECK(opt_.rank >= 0 && opt_.rank < opt_.world_size, "loader: rank ", opt_.rank,
           " is outside world size ", opt_.world_size);
  MV_CHECK(opt_.prefetch_depth >= 1, "loader: prefetch_depth must be at least 1, got ",
           opt_.prefetch_depth);
  MV_CHECK(opt_.pack_len >= 0, "loader: pack_len must not be negative, got ", opt_.pack_len);
  MV_CHECK(opt_.workers >= 1, "loader: workers must be at least 1, got ", opt_.workers);
  MV_CHECK(opt_.max_bad_fraction >= 0.0 && opt_.max_bad_fraction <= 1.0,
           "loader: max_bad_fraction must be in [0, 1], got ", opt_.max_bad_fraction);
  global_batch_ = opt_.micro_batch * opt_.grad_accum * opt_.world_size;
  steps_per_epoch_ = static_cast<int64_t>(dataset_.size()) / global_batch_;
  MV_CHECK(steps_per_epoch_ > 0, "dataset ", dataset_.path(), " holds ", dataset_.size(),
           " samples, fewer than one global batch of ", global_batch_, " (micro_batch ",
           opt_.micro_batch, " × grad_accum ", opt_.grad_accum, " × world_size ", opt_.world_size,
           ")");
  state_.global_batch = global_batch_;
}

Loader::~Loader() = default;

std::shared_ptr<const std::vector<uint32_t>> Loader::permutation(int64_t epoch) const {
  std::lock_guard<std::mutex> lock(perm_mu_);
  for (const auto& [e, p] : perms_)
    if (e == epoch) return p;
  auto p = std::make_shared<const std::vector<uint32_t>>(
      epoch_permutation(dataset_.size(), opt_.seed, epoch));
  if (perms_.size() == 2) perms_.erase(perms_.begin());
  perms_.emplace_back(epoch, p);
  return p;
}

std::vector<int64_t> Loader::slice(int64_t epoch, int64_t step, int64_t m) const {
  MV_CHECK(epoch >= 0 && step >= 0 && step < steps_per_epoch_ && m >= 0 && m < opt_.grad_accum,
           "loader: no micro-batch ", m, " of step ", step, " in epoch ", epoch, " (",
           steps_per_epoch_, " steps of ", opt_.grad_accum, " micro-batches)");
  const std::shared_ptr<const std::vector<uint32_t>> perm = permutation(epoch);
  const int64_t begin = step * global_batch_ + (m * opt_.world_size + opt_.rank) * opt_.micro_batch;
  return std::vector<int64_t>(perm->begin() + begin, perm->begin() + begin + opt_.micro_batch);
}

// Item k of the sequence that starts at `start`: micro-batch k counted from that step.
Loader::Produced Loader::produce(int64_t k, const LoaderState& start) const {
  const int64_t per_epoch = steps_per_epoch_ * opt_.grad_accum;
  const int64_t a = start.step_in_epoch * opt_.grad_accum + k;
  const int64_t epoch = start.epoch + a / per_epoch;
  const int64_t step = (a % per_epoch) / opt_.grad_accum, m = a % opt_.grad_accum;

  Produced out;
  std::vector<Sample> samples;
  std::vector<int64_t> kept;
  for (const int64_t i : slice(epoch, step, m)) {
    SampleResult r = dataset_.load(static_cast<size_t>(i), epoch);
    if (r.sample) {
      samples.push_back(std::move(*r.sample));
      kept.push_back(i);
    } else {
      out.warnings.push_back(dataset_.skip_warning(static_cast<size_t>(i), r.skip_reason));
    }
  }
  out.batch = collate(samples, std::move(kept), dataset_.pad_id(), dataset_.images().tile_size(),
                      opt_.pack_len);
  out.batch.skipped = static_cast<int64_t>(out.warnings.size());
  return out;
}

void Loader::emit(const std::string& warning) const {
  if (opt_.warn) {
    opt_.warn(warning);
    return;
  }
  const std::string line = warning + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void Loader::check_bad_fraction(int64_t skipped, int64_t seen, double allowed,
                                const std::string& scope) const {
  if (static_cast<double>(skipped) <= allowed) return;
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.2f%%", 100.0 * static_cast<double>(skipped) / seen);
  MV_FAIL("dataset ", dataset_.path(), ": ", skipped, " of ", seen, " samples ", scope,
          " were bad, more than max_bad_fraction ", opt_.max_bad_fraction,
          " (--max-bad-fraction) allows (", pct,
          " bad; see the warnings above; raise --max-bad-fraction to accept them)");
}

double bad_samples_allowed_so_far(double max_bad_fraction, int64_t seen) {
  if (seen < kBadFractionMinSamples) return std::numeric_limits<double>::infinity();
  const double expected = max_bad_fraction * static_cast<double>(seen);
  return expected + 3.0 * std::sqrt(expected);
}

Step Loader::next_step() {
  if (!prefetch_) {
    const LoaderState start = state_;
    prefetch_ = std::make_unique<OrderedPrefetcher<Produced>>(
        [this, start](int64_t k) { return produce(k, start); }, opt_.workers, opt_.prefetch_depth);
  }
  Step step;
  step.epoch = state_.epoch;
  step.step_in_epoch = state_.step_in_epoch;
  for (int64_t m = 0; m < opt_.grad_accum; ++m) {
    Produced p = prefetch_->next();
    for (const std::string& w : p.warnings) emit(w);
    step.micro.push_back(std::move(p.batch));
  }

  const int64_t skipped = step.skipped();
  state_.seen_total += opt_.micro_batch * opt_.grad_accum;
  state_.skipped_total += skipped;
  state_.skipped_this_epoch += skipped;
  if (++state_.step_in_epoch == steps_per_epoch_) {
    step.epoch_end =
        EpochSummary{state_.epoch, steps_per_epoch_ * opt_.micro_batch * opt_.grad_accum,
                     state_.skipped_this_epoch};
    ++state_.epoch;
    state_.step_in_epoch = 0;
    state_.skipped_this_epoch = 0;
    check_bad_fraction(step.epoch_end->skipped, step.epoch_end->samples,
                       opt_.max_bad_fraction * static_cast<double>(step.epoch_end->samples),
                       "in epoch " + std::to_string(step.epoch_end->epoch));
  }
  check_bad_fraction(state_.skipped_total, state_.seen_total,
                     bad_samples_allowed_so_far(opt_.max_bad_fraction, state_.seen_total),
                     "seen so far");
  return step;
}

LoaderState Loader::state() const { return state_; }

void Loader::seek(const LoaderState& state) {
  MV_CHECK(state.global_batch == 0 || state.global_batch == global_batch_,
           "loader: the state was saved with a global batch of ", state.global_batch,
           " samples, this run has ", global_batch_,
           " (micro_batch × grad_accum × world_size must match to resume the data order)");
  MV_CHECK(state.step_in_epoch < steps_per_epoch_, "loader: the state's step ", state.step_in_epoch,
           " is past the ", steps_per_epoch_, " steps of an epoch of ", dataset_.path());
  prefetch_.reset();
  state_ = state;
  state_.global_batch = global_batch_;
}

}  // namespace minivlm
