// Model configuration: config.json of SPEC §1.1 (unknown keys are an error, missing keys take the
// defaults of the minimind2-small-v preset; derived sizes are computed once here).
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace minivlm {

// The ranges ModelConfig::from_json accepts (SPEC §1.1): a size outside them, or sizes whose
// parameter count passes kMaxConfigParams, is an error naming the key.
inline constexpr int64_t kMaxConfigDim = int64_t{1} << 20;  // hidden, intermediate, head_dim
inline constexpr int64_t kMaxConfigVocab = int64_t{1} << 24;
inline constexpr int64_t kMaxConfigLayers = 1024;
inline constexpr int64_t kMaxConfigHeads = 4096;  // attention heads, experts
inline constexpr int64_t kMaxConfigPositions = int64_t{1} << 24;
inline constexpr int64_t kMaxConfigImageSize = int64_t{1} << 16;  // pixels per edge
inline constexpr int64_t kMaxConfigVideoFrames = int64_t{1} << 14;
inline constexpr int64_t kMaxConfigParams = int64_t{1} << 40;

struct LlmConfig {
  int64_t vocab_size = 6400;
  int64_t hidden_size = 512;
  int64_t num_hidden_layers = 8;
  int64_t num_attention_heads = 8;
  int64_t num_key_value_heads = 2;
  int64_t head_dim = 0;           // 0 in the file → hidden_size / num_attention_heads
  int64_t intermediate_size = 0;  // 0 in the file → 64·ceil(hidden·8/3 / 64)
  double rope_theta = 1e6;
  double rms_norm_eps = 1e-5;
  bool qk_norm = false;
  bool tie_word_embeddings = true;
  int64_t max_position_embeddings = 32768;
  // Mixture-of-experts feed-forward layers (MiniMind-3's MOEFeedForward) instead of the dense MLP:
  // a softmax router over num_experts SwiGLU experts of moe_intermediate_size (0 in the file →
  // intermediate_size), the top num_experts_per_tok per token, their weights renormalised to sum
  // to 1 when norm_topk_prob; training adds router_aux_loss_coef · the load-balancing loss.
  bool use_moe = false;
  int64_t num_experts = 4;
  int64_t num_experts_per_tok = 1;
  int64_t moe_intermediate_size = 0;
  bool norm_topk_prob = true;
  double router_aux_loss_coef = 5e-4;
};

struct VisionConfig {
  std::string type = "clip";  // a registered vision tower (nn/vision_tower.h)
  int64_t image_size = 224;
  int64_t patch_size = 16;
  int64_t num_channels = 3;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  double layer_norm_eps = 1e-5;
  std::string hidden_act = "quick_gelu";
  std::array<float, 3> image_mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> image_std{0.26862954f, 0.26130258f, 0.27577711f};
  // The resize filter of the image processor, Pillow's arithmetic: "bicubic", "bilinear" or
  // "lanczos".
  std::string resample = "bicubic";
  // SmolVLM / Idefics3 image processing (vision.type "smolvlm"): the image is first resized so its
  // longest edge is longest_edge (size.longest_edge; 0 = no such step), then, with
  // do_image_splitting, cut into image_size² tiles plus a global image; without, resized to one
  // image_size² tile. Video frames (SmolVLM2): sampled at video_fps up to video_max_frames, each
  // resized to video_longest_edge and then to one tile.
  int64_t longest_edge = 0;
  bool do_image_splitting = false;
  double video_fps = 1.0;
  int64_t video_max_frames = 64;
  int64_t video_longest_edge = 0;

  int64_t grid() const { return image_size / patch_size; }
};

struct ProjectorConfig {
  // A registered projector (nn/projector.h). Not in SPEC §1.1's file: a config.json without it
  // (every file before the key existed) takes "linear", and to_json writes it only when it is not
  // "linear", so such a model's config.json stays as it was.
  std::string type = "linear";
  int64_t pixel_shuffle = 2;
  bool bias = false;             // "linear": a bias on the projection ("mlp" always has biases)
  double layer_norm_eps = 1e-5;  // "mlp": its LayerNorm's eps
};

struct ModelConfig {
  LlmConfig llm;
  VisionConfig vision;
  ProjectorConfig projector;
  std::string image_token = "<|image_pad|>";

  // Image tokens per tile, (G / r)²: one run of them per tile (a CLIP image is one tile).
  int64_t tokens_per_image() const;
  int64_t projector_in() const;  // D · r²

  static ModelConfig from_json(const nlohmann::json& j, const std::string& origin);
  static ModelConfig from_file(const std::string& path);
  // Every key (projector.type only when not "linear", projector.layer_norm_eps only for "mlp",
  // vision.resample only when not "bicubic", the SmolVLM processing keys only for vision.type
  // "smolvlm", the MoE keys only when llm.use_moe), derived values
  // filled in: a model of the earlier keys writes the config.json it always did.
  nlohmann::json to_json() const;
};

}  // namespace minivlm
