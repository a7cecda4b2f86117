// Collation: samples → one padded micro-batch (SPEC §4.2).
#pragma once
#include <cstdint>
#include <vector>

#include "data/dataset.h"
#include "nn/vlm.h"

namespace minivlm {

// One micro-batch of one rank. Bad samples of its slice are left out, so it can hold fewer samples
// than the micro-batch size, and none when the whole slice was bad: then empty() is true and the
// tensors of `batch` are undefined. A trainer skips the forward of an empty micro-batch but still
// takes part in the step's collectives (its supervised-token count, 0, included).
//
// Unpacked, row b holds samples[b]. Packed (--pack, SPEC §4.2), a row holds several samples:
// batch.seq_bounds says where each starts, and sample_rows which row each of `samples` went to
// (a row lists its samples in the order of `samples`).
struct MicroBatch {
  VlmBatch batch;  // ids and label_mask [rows, T]; pixels [tiles, 3, S, S] or undefined
  std::vector<int64_t> samples;      // dataset index of each sample, in loader order
  std::vector<int64_t> sample_rows;  // [samples] the row of each sample (unpacked: 0, 1, 2, ...)
  int64_t supervised_tokens = 0;     // the samples' supervised targets (the loss denominator)
  int64_t tokens = 0;                // the samples' tokens (padding not counted)
  int64_t skipped = 0;               // bad samples of this slice
  bool empty() const { return samples.empty(); }
};

// Right-pads every sample to the longest one with `pad_id` (label 0 on padding) and concatenates
// the images' tiles ([3, tile_size, tile_size] each) in sample order. `samples` and `indices` are
// parallel.
//
// With pack_len > 0 the samples are packed instead: each goes, in loader order, into the first row
// whose tokens so far leave room for it within pack_len (first fit; a new row when none does), so
// a sample is never split and its image runs stay whole. Rows are right-padded to the longest
// row; batch.seq_bounds[row] lists the row's sample starts and its end, the label of each
// sample's first token is 0 (no sample predicts the next one's first token), and images and tiles
// are listed row by row (batch.images_per_sample counts a row's images). A sample longer than
// pack_len (the data set limits samples to max_seq_len, pack_len is max_seq_len) gets a row of
// its own.
MicroBatch collate(const std::vector<Sample>& samples, std::vector<int64_t> indices, int32_t pad_id,
                   int64_t tile_size, int64_t pack_len = 0);

}  // namespace minivlm
