// Hugging Face SmolVLM / Idefics3 model directories (SmolVLMForConditionalGeneration,
// Idefics3ForConditionalGeneration): their config.json and processor files translated to a
// ModelConfig, and their tensor names mapped to minivlm's.
//
// Config translation (HF key → minivlm key):
//   vision_config.{image_size, patch_size, num_channels, hidden_size, num_hidden_layers,
//     num_attention_heads, intermediate_size, layer_norm_eps, hidden_act} → vision.* (type
//     "smolvlm"; HF's SmolVLMVisionConfig defaults where a key is absent)
//   scale_factor → projector.pixel_shuffle (projector "linear", bias false)
//   text_config (Llama; hidden_act silu, no attention or MLP bias, rope_type "default" only) →
//     llm.{vocab_size, hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads,
//     head_dim (default hidden / heads), intermediate_size, rms_norm_eps,
//     max_position_embeddings}; llm.rope_theta from text_config.rope_theta,
//     rope_parameters.rope_theta or rope_scaling.rope_theta; qk_norm false
//   tie_word_embeddings (top level, else text_config; where the two disagree, as configs written
//     by transformers 4 may, the weights decide: no lm_head.weight → tied) →
//     llm.tie_word_embeddings
//   image_token_id → image_token: the tokenizer_config.json's "image_token" (default "<image>"),
//     whose id must be image_token_id
//   image processor (preprocessor_config.json, or processor_config.json's "image_processor"):
//     resample (1 lanczos, 2 bilinear, 3 bicubic) → vision.resample; size.longest_edge →
//     vision.longest_edge; max_image_size.longest_edge must equal vision_config.image_size;
//     do_image_splitting, image_mean, image_std → vision.*
//   video processor (video_preprocessor_config.json, processor_config.json's "video_processor",
//     or a "video_sampling" in preprocessor_config.json): video_sampling.{fps, max_frames,
//     video_size.longest_edge}, else fps / num_frames / size.longest_edge →
//     vision.{video_fps, video_max_frames, video_longest_edge}
//
// Tensor names (HF ↔ minivlm):
//   model.vision_model.*                             ↔ vision_encoder.vision_model.*
//   model.connector.modality_projection.proj.weight  ↔ vision_proj.proj.weight
//   model.text_model.*                               ↔ model.*
//   lm_head.weight                                   ↔ lm_head.weight
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/config.h"

namespace minivlm {

// Whether DIR/config.json is a Hugging Face SmolVLM or Idefics3 config (model_type "smolvlm" or
// "idefics3").
bool is_hf_smolvlm_dir(const std::string& dir);

// The ModelConfig of the Hugging Face directory DIR (table above). `has_lm_head`: whether its
// weights hold lm_head.weight (used only where the config's tie_word_embeddings values disagree).
// Every inconsistency or unsupported setting is an error naming the file and key.
struct HfSmolVLMConfig {
  ModelConfig config;
  int64_t image_token_id =
      -1;  // config.json's; the tokenizer's id of config.image_token must match
};
HfSmolVLMConfig hf_smolvlm_config(const std::string& dir, bool has_lm_head);

// HF tensor name → minivlm name ("" for a name outside the layout), and back.
std::string hf_smolvlm_to_minivlm(const std::string& hf_name);
std::string minivlm_to_hf_smolvlm(const std::string& name);

}  // namespace minivlm
