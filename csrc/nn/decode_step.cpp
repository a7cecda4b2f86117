#include "nn/decode_step.h"

#include <array>
#include <vector>

#include "ops/ops.h"

namespace minivlm {

namespace {

std::array<DecodeFastPath, 3>& fast_paths() {
  static std::array<DecodeFastPath, 3> paths{};
  return paths;
}

const DecodeFastPath& fast_path_of(const MiniMindLM& lm) {
  return fast_paths()[static_cast<size_t>(lm.embed_tokens.device().type)];
}

// The op graph with the cache on the model's device.
class GraphDecodeStep final : public DecodeStep {
 public:
  GraphDecodeStep(const MiniMindLM& lm, int64_t batch) : lm_(lm), batch_(batch) {}

  const float* step(const int64_t* ids, KVCache& cache) override {
    const Tensor h = lm_.embed(
        Tensor::from_vector(std::vector<int64_t>(ids, ids + batch_), {batch_, 1}));  // [B, 1, H]
    logits_ = lm_.logits(lm_.forward_hidden(h, cache.length, &cache)).to_float_vector();
    return logits_.data();
  }

 private:
  const MiniMindLM& lm_;
  int64_t batch_;
  std::vector<float> logits_;  // [B, V]
};

}  // namespace

DecodeDtype parse_decode_dtype(const std::string& name) {
  if (name == "f32") return DecodeDtype::f32;
  if (name == "bf16") return DecodeDtype::bf16;
  if (name == "i8") return DecodeDtype::i8;
  MV_FAIL("unknown decode dtype '", name, "' (--decode-dtype); valid: f32, bf16, i8");
}

int parse_decode_threads(const std::string& value) {
  if (value == "auto") return kAutoDecodeThreads;
  size_t used = 0;
  int n = -1;
  try {
    n = std::stoi(value, &used);
  } catch (const std::exception&) {
  }
  MV_CHECK(used == value.size() && n >= 0 && n <= 4096, "--decode-threads '", value,
           "': expected auto or a thread count (0: all)");
  return n;
}

const char* decode_dtype_name(DecodeDtype d) {
  switch (d) {
    case DecodeDtype::f32:
      return "f32";
    case DecodeDtype::bf16:
      return "bf16";
    case DecodeDtype::i8:
      return "i8";
  }
  return "?";
}

void register_decode_fast_path(DeviceType type, DecodeFastPath path) {
  fast_paths()[static_cast<size_t>(type)] = path;
}

bool has_decode_fast_path(const MiniMindLM& lm) { return fast_path_of(lm).make != nullptr; }

std::unique_ptr<DecodeStep> make_decode_step(const MiniMindLM& lm, int64_t batch, int64_t max_len,
                                             const DecodeOptions& options) {
  if (const DecodeFastPath& f = fast_path_of(lm); f.make != nullptr)
    return f.make(lm, batch, max_len, options);
  return std::make_unique<GraphDecodeStep>(lm, batch);
}

std::shared_ptr<const DecodeWeights> prepare_decode_weights(const MiniMindLM& lm,
                                                            DecodeDtype dtype) {
  const DecodeFastPath& f = fast_path_of(lm);
  return f.prepare != nullptr ? f.prepare(lm, dtype) : nullptr;
}

}  // namespace minivlm
