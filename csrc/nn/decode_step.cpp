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

  int64_t rows() const override { return batch_; }
  const float* step_rows(int64_t n, const int64_t* ids, const int64_t* slots,
                         const int64_t* positions, KVCache& cache) override {
    MV_CHECK(n > 0 && n <= batch_, "decode step: ", n, " rows for a step of ", batch_);
    bool together = n == cache.k[0].size(0);  // every row, in order, at one position
    for (int64_t i = 0; i < n && together; ++i)
      together = slots[i] == i && positions[i] == positions[0];
    if (together) {
      const Tensor h =
          lm_.embed(Tensor::from_vector(std::vector<int64_t>(ids, ids + n), {n, 1}));  // [B, 1, H]
      const int64_t length = cache.length;
      logits_ = lm_.logits(lm_.forward_hidden(h, positions[0], &cache)).to_float_vector();
      cache.length = length;
      return logits_.data();
    }
    // Rows at different positions: one graph per row on a view of its cache row.
    logits_.clear();
    for (int64_t i = 0; i < n; ++i) {
      KVCache row = cache.row(slots[i], positions[i]);
      const Tensor h = lm_.embed(Tensor::from_vector(std::vector<int64_t>{ids[i]}, {1, 1}));
      const std::vector<float> l =
          lm_.logits(lm_.forward_hidden(h, positions[i], &row)).to_float_vector();
      logits_.insert(logits_.end(), l.begin(), l.end());
    }
    return logits_.data();
  }

 private:
  const MiniMindLM& lm_;
  int64_t batch_;
  std::vector<float> logits_;  // [B, V]
};

}  // namespace

const float* DecodeStep::step(const int64_t* ids, KVCache& cache) {
  const int64_t batch = rows();
  MV_CHECK(!cache.k.empty() && cache.k[0].size(0) == batch, "decode step: a KV cache of ",
           cache.k.empty() ? 0 : cache.k[0].size(0), " rows for a step of ", batch);
  std::vector<int64_t> slots(static_cast<size_t>(batch)),
      positions(static_cast<size_t>(batch), cache.length);
  for (int64_t b = 0; b < batch; ++b) slots[static_cast<size_t>(b)] = b;
  const float* logits = step_rows(batch, ids, slots.data(), positions.data(), cache);
  ++cache.length;
  return logits;
}

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
