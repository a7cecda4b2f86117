// Model weights on disk: strict loading (every missing, unexpected or misshapen tensor is listed by
// name before the error), saving, the model directory (config.json, model.safetensors,
// tokenizer.json), and importers for foreign checkpoints.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "nn/vlm.h"

namespace minivlm {

class Tokenizer;

// Copies every tensor of `path` into the model's parameters (converted to their dtype). Strict:
// the file must hold exactly the model's tensors, with their shapes; `lm_head.weight` is accepted
// for a tied model when it equals the embedding.
void load_weights(const MiniMindVLM& model, const std::string& path);
void save_weights(const MiniMindVLM& model, const std::string& path);

// Loads only the tensors of `path` that `accept(name)` maps to a model name (empty = ignore);
// every model tensor that `required(name)` selects must be found. Mismatches are listed, then
// thrown.
struct ImportRule {
  std::function<std::string(const std::string& file_name)> map;  // "" → ignored
  std::function<bool(const std::string& model_name)> required;
  std::string what;  // "HF CLIP vision tower", for messages
};
void import_weights(const MiniMindVLM& model, const std::string& path, const ImportRule& rule);
// A Hugging Face vision tower of the model's vision.type — CLIP (CLIPModel or CLIPVisionModel)
// or SigLIP (SiglipModel or SiglipVisionModel; its pooling head is left out) — from its
// model.safetensors, or from its folder: then the folder's config.json and, when present,
// preprocessor_config.json must describe the model's vision config (every difference is named).
void import_hf_vision(const MiniMindVLM& model, const std::string& path);
// A MiniMind LLM state dict (safetensors; see scripts/convert_minimind_pth.py) → the LLM.
void import_minimind_llm(const MiniMindVLM& model, const std::string& path);

struct LoadedModel {
  ModelConfig config;
  std::shared_ptr<Tokenizer> tokenizer;
  std::unique_ptr<MiniMindVLM> model;
};
// Reads DIR/config.json, DIR/tokenizer.json (with the chat template of DIR/tokenizer_config.json,
// text/chat_template.h) and DIR/model.safetensors.
LoadedModel load_model_dir(const std::string& dir);
// Writes DIR/config.json, DIR/model.safetensors and a copy of the tokenizer file, with the
// tokenizer_config.json and special_tokens_map.json beside it where they exist.
void save_model_dir(const MiniMindVLM& model, const std::string& tokenizer_json_path,
                    const std::string& dir);

}  // namespace minivlm
