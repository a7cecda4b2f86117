// Generation with a KV cache (SPEC §1.2, §6): the vision tower runs once at prefill, the prompt is
// prefilled in one batched forward, then tokens are decoded one at a time against the cache by the
// decode step of the model's device (nn/decode_step.h: the fused CPU decoder on the host, the op
// graph with the cache on a device). Without the cache (use_cache = false) every step recomputes
// the whole sequence: the reference the cached path is tested against.
#pragma once
#include <chrono>
#include <functional>
#include <vector>

#include "infer/sampling.h"
#include "nn/decode_step.h"
#include "nn/vlm.h"

namespace minivlm {

struct GenerationOptions {
  int64_t max_new_tokens = 512;
  SamplingOptions sampling;
  uint64_t seed = 42;
  int32_t eos_id = 2;  // <|im_end|>
  bool use_cache = true;
  // Element type of the weights a decode fast path reads (nn/decode_step.h): f32 matches the
  // uncached path up to summation order; bf16 / i8 read half / a quarter of the bytes per token.
  // The prefill stays f32. Where the op graph decodes (a device), the model's own weights are used
  // in their dtype (place_for_inference), and the KV cache has that dtype too.
  DecodeDtype decode_dtype = DecodeDtype::f32;
  // Prebuilt decode weights of this model (built per call when null; their dtype wins).
  std::shared_ptr<const DecodeWeights> decode_weights;
  int decode_threads = 0;  // threads per fast-path decode step; 0: OpenMP's count
};

struct GenerationStats {
  int64_t prompt_tokens = 0, new_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
};

// The images of a call's rows: every row's tiles in row order ([tiles, 3, S, S], undefined without
// images), each row's image count, and each image's tile count (empty: one tile per image).
struct RowImages {
  Tensor pixels;
  std::vector<int64_t> per_row;
  std::vector<int64_t> tiles_per_image = {};
};

// One prompt per row; all prompts of a call must have the same length (batch equal-length prompts
// together). Returns each row's reply ids, without the eos token. `on_token` (row, id) sees every
// new token as it is chosen, eos excluded. Throws a clear error when the prompt and max_new_tokens
// exceed the model's context.
std::vector<std::vector<int32_t>> generate(
    const MiniMindVLM& model, const std::vector<std::vector<int32_t>>& prompts,
    const RowImages& images, const GenerationOptions& options,
    const std::function<void(size_t, int32_t)>& on_token = {}, GenerationStats* stats = nullptr);

}  // namespace minivlm
