// MiniMind-V: the frozen vision tower (vision.type) → projector (projector.type, pixel shuffle
// first), whose rows replace the image tokens of the text embeddings (SPEC §1.5), then the
// MiniMind LM.
#pragma once
#include <memory>
#include <vector>

#include "nn/config.h"
#include "nn/llm.h"
#include "nn/projector.h"
#include "nn/vision_cache.h"
#include "nn/vision_tower.h"

namespace minivlm {

// One padded batch. Images are listed sample by sample in order of appearance, and each image is
// one or more tiles (as its image processor cut it); every tile is one run of N image tokens, and
// the tiles' rows fill the runs in order.
struct VlmBatch {
  Tensor ids;                              // [B, T] i64, right-padded
  Tensor label_mask;                       // [B, T] i64; 1 where the token is a supervised target
  Tensor pixels;                           // [n_tiles, 3, S, S] f32, or undefined without images
  std::vector<int64_t> images_per_sample;  // [B]
  std::vector<int64_t> tiles_per_image;    // [n_images]; empty: one tile per image
  // Packed rows (SPEC §4.2), or empty (one sample per row): row b holds the samples
  // [seq_bounds[b][k], seq_bounds[b][k + 1]), the first bound 0; tokens past the last bound are
  // padding. Positions restart at 0 for each sample, and attention stays inside each sample.
  // images_per_sample then counts a row's images.
  std::vector<std::vector<int64_t>> seq_bounds;
  int64_t supervised_tokens() const;  // targets that carry loss (positions 1..T−1)
};

struct VlmOutput {
  Tensor logits;    // [B, T, V]; undefined from forward(..., Logits::none)
  Tensor loss;      // scalar: Σ token losses / denominator
  Tensor aux_loss;  // scalar: the MoE router loss over the batch's tokens, computed only where
                    // grad mode is on (training); undefined for a dense model and without grad
};

class MiniMindVLM {
 public:
  MiniMindVLM(const ModelConfig& c, int64_t image_token_id);
  const ModelConfig& config() const { return c_; }
  int64_t image_token_id() const { return image_token_id_; }

  // Every tensor with its SPEC §1.6 name, in a fixed order.
  ParamList params() const;
  ParamList trainable_params() const;  // the ones with requires_grad
  void init(uint64_t seed);

  // Text embeddings with image rows merged in. Throws minivlm::Error naming the sample when its
  // runs of image tokens do not match its images' tiles (one run of N per tile).
  Tensor embed(const VlmBatch& batch) const;
  // The projected image rows: tiles [n, 3, S, S] → [n·N, H] (vision tower without autograd).
  Tensor image_rows(const Tensor& pixels) const;
  // Which logits forward() keeps: all of them, or none (training: the LM head and the
  // cross-entropy then run on the supervised rows only, the same loss for fewer FLOPs).
  enum class Logits : uint8_t { all, none };
  // Logits and the masked loss. denominator > 0 divides the summed token loss by it (a global
  // supervised-token count, SPEC §4.2); 0 divides by this batch's count.
  VlmOutput forward(const VlmBatch& batch, double denominator = 0.0,
                    Logits logits = Logits::all) const;
  // From now on image features come through `cache` (nullptr: computed every time).
  void set_vision_cache(std::shared_ptr<VisionFeatureCache> cache) {
    vision_cache_ = std::move(cache);
  }
  const VisionFeatureCache* vision_cache() const { return vision_cache_.get(); }

  std::unique_ptr<VisionTower> vision;
  std::unique_ptr<Projector> projector;
  MiniMindLM llm;

 private:
  ModelConfig c_;
  int64_t image_token_id_;
  std::shared_ptr<VisionFeatureCache> vision_cache_;
};

// Next-token targets: targets[b, t] = ids[b, t+1] where label_mask[b, t+1], else kIgnoreIndex.
Tensor shifted_targets(const Tensor& ids, const Tensor& label_mask);

}  // namespace minivlm
