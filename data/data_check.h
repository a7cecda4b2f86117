// Reading a whole dataset before an expensive run (`minivlm check-data`, SPEC §6): how many records
// are usable, why the others are not and where they are, and how long the samples are.
//
// Every record goes through Dataset::load (epoch 0), exactly as training reads it: its images
// decoded and preprocessed, its conversation rendered and tokenized. Bad records are grouped by the
// kind of their skip reason (skip_reason_kind); each group lists its first locations (FILE:LINE
// and the whole reason) and its count.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace minivlm {

struct DataCheckOptions {
  int workers = 1;            // threads loading records
  int64_t max_locations = 5;  // locations listed per reason kind and for over-long samples
  // Called now and then from the calling thread with the records read so far and the total.
  std::function<void(size_t done, size_t total)> progress;
};

struct DataCheckReport {
  // One record: where it is (Dataset::location: "FILE:LINE", parquet "FILE:row N") and why.
  struct Location {
    std::string where;
    std::string reason;
  };
  struct ReasonGroup {
    std::string kind;  // skip_reason_kind of the reasons
    int64_t count = 0;
    std::vector<Location> first;  // at most max_locations, in file order
  };

  std::string path;
  int64_t max_seq_len = 0;
  int64_t samples = 0;           // records (non-empty lines)
  int64_t usable = 0;            // records that load as a sample
  int64_t truncated = 0;         // usable samples cut at max_seq_len (over_long truncate)
  std::vector<ReasonGroup> bad;  // by count, largest first; ties in order of first occurrence
  // Tokens of every record that was rendered (usable, or skipped after rendering), before any cut;
  // sorted.
  std::vector<int64_t> lengths;
  std::map<int64_t, int64_t> images_per_sample;  // images (and videos) → usable samples
  int64_t over_long = 0;                         // rendered records longer than max_seq_len
  std::vector<Location> over_long_first;         // their first locations (reason: the length)

  int64_t bad_samples() const { return samples - usable; }
  double bad_fraction() const;  // 0 for an empty dataset
  // Nearest-rank percentile (0 < p ≤ 100) of `lengths`; 0 when there is none.
  int64_t length_percentile(double p) const;
  // The report as text, one item per line.
  std::string text() const;
};

// Loads every record of `data` (with `options.workers` threads; the report does not depend on
// their number). Rethrows a failure of the dataset itself (Dataset::load).
DataCheckReport check_dataset(const Dataset& data, const DataCheckOptions& options = {});

// The kind of a skip reason, for grouping: the reason up to its first ": " or " (", with quoted
// values and words holding a digit or a '/' (counts, indices, paths) replaced by "…".
// "missing image /data/a.png" → "missing image …".
std::string skip_reason_kind(const std::string& reason);

}  // namespace minivlm
