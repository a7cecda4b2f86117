// Collation: samples → one padded micro-batch (SPEC §4.2).
#pragma once
#include <cstdint>
#include <vector>

#include "data/dataset.h"
#include "nn/vlm.h"

namespace minivlm {

// One micro-batch of one rank. Bad samples of its slice are left out, so B can be smaller than
// the micro-batch size, and 0 when the whole slice was bad: then empty() is true and the tensors
// of `batch` are undefined. A trainer skips the forward of an empty micro-batch but still takes
// part in the step's collectives (its supervised-token count, 0, included).
struct MicroBatch {
  VlmBatch batch;                 // ids and label_mask [B, T]; pixels [tiles, 3, S, S] or undefined
  std::vector<int64_t> samples;   // [B] dataset index of each row
  int64_t supervised_tokens = 0;  // label_mask ones at positions 1..T−1 (the loss denominator)
  int64_t skipped = 0;            // bad samples of this slice
  bool empty() const { return samples.empty(); }
};

// Right-pads every sample to the longest one with `pad_id` (label 0 on padding) and concatenates
// the images' tiles ([3, tile_size, tile_size] each) in sample order. `samples` and `indices` are
// parallel.
MicroBatch collate(const std::vector<Sample>& samples, std::vector<int64_t> indices, int32_t pad_id,
                   int64_t tile_size);

}  // namespace minivlm
