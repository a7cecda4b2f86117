// The decode seam: one new token per row against the KV cache, behind one interface, so generation
// keeps one loop whatever computes it. A back-end may register a fast path for its device type
// (the CPU's fused decoder, cpu/decode.h); elsewhere the step is the op graph — embed, the cached
// forward_hidden, the logits — in the model's dtype with the cache on the model's device (the
// back-end's decode attention) and only the logits brought to the host, as fp32.
#pragma once
#include <memory>
#include <string>

#include "nn/llm.h"

namespace minivlm {

// Element type of the weights a fast path reads: f32 shares the model's own tensors; bf16 holds
// rounded copies, half the bytes per token; i8 holds 8-bit copies with one scale per row (a
// quarter). The op graph always decodes with the model's own weights, in their dtype (f32, or bf16
// on a device: infer/device_model.h), with a KV cache of that dtype (KVCache::allocate_for).
enum class DecodeDtype : uint8_t { f32, bf16, i8 };
DecodeDtype parse_decode_dtype(const std::string& name);  // "f32", "bf16", "i8" (--decode-dtype)
const char* decode_dtype_name(DecodeDtype d);

// A fast path's copy of a model's weights in its element type: built once, shared by every decode
// of that model (opaque here; cpu/decode.h).
struct DecodeWeights;

inline constexpr int kAutoDecodeThreads = -1;
// "auto" or a count ≥ 0 (--decode-threads).
int parse_decode_threads(const std::string& value);

struct DecodeOptions {
  DecodeDtype dtype = DecodeDtype::f32;
  // Threads per step for a fast path; 0: OpenMP's count; kAutoDecodeThreads: for a step of one row
  // the weights' choice, measured once when they are built, for several rows all of OpenMP's
  // (cpu/decode.h).
  int threads = 0;
  std::shared_ptr<const DecodeWeights> weights;  // prepared weights (built per step object if null)
};

class DecodeStep {
 public:
  virtual ~DecodeStep() = default;
  // Feeds ids[b] (one per row) at position cache.length, appends their keys and values to the
  // cache and returns the logits [batch, V] on the host, valid until the next step.
  const float* step(const int64_t* ids, KVCache& cache);
  // Rows at positions of their own (continuous batching: requests join and leave between steps):
  // n ≤ batch rows, row i feeding ids[i] at position positions[i] of the cache's row slots[i]
  // (distinct slots), whose keys and values go there; it attends to that row's positions
  // 0..positions[i]. Returns the logits [n, V] on the host, valid until the next step; a row's
  // logits do not depend on the other rows. cache.length is left as it is.
  virtual const float* step_rows(int64_t n, const int64_t* ids, const int64_t* slots,
                                 const int64_t* positions, KVCache& cache) = 0;
  virtual int64_t rows() const = 0;  // the most rows a step feeds (the batch it was made for)
  // Threads a step of `rows` rows runs on (a fast path's choice; 0 for the op graph, which uses
  // the back-end's).
  virtual int threads(int64_t /*rows*/ = 1) const { return 0; }
};

// The registered fast path of the model's device, else the op graph; `batch` rows attending to up
// to `max_len` positions.
std::unique_ptr<DecodeStep> make_decode_step(const MiniMindLM& lm, int64_t batch, int64_t max_len,
                                             const DecodeOptions& options);
// Whether the model's device has a fast path (--decode-dtype and --decode-threads apply there).
bool has_decode_fast_path(const MiniMindLM& lm);
// The model's weights prepared once for its device's fast path (null without one).
std::shared_ptr<const DecodeWeights> prepare_decode_weights(const MiniMindLM& lm,
                                                            DecodeDtype dtype);

// What a fast path registers for its device type.
struct DecodeFastPath {
  std::unique_ptr<DecodeStep> (*make)(const MiniMindLM& lm, int64_t batch, int64_t max_len,
                                      const DecodeOptions& options);
  std::shared_ptr<const DecodeWeights> (*prepare)(const MiniMindLM& lm, DecodeDtype dtype);
};
void register_decode_fast_path(DeviceType type, DecodeFastPath path);

}  // namespace minivlm
