// Model weights on disk: strict loading (every missing, unexpected or misshapen tensor is listed by
// name before the error), saving, the model directory (config.json, model.safetensors,
// tokenizer.json), and importers for foreign checkpoints.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

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

// Where a loaded model came from, so that saving it keeps its directory's layout.
struct ModelSource {
  enum class Format {
    minivlm,     // config.json of SPEC §1.1, minivlm tensor names
    hf_smolvlm,  // a Hugging Face SmolVLM / Idefics3 directory (io/hf_smolvlm.h)
  };
  Format format = Format::minivlm;
  std::string dir;  // the directory it was loaded from
  // hf_smolvlm: every tensor of the directory's weights (its HF name and dtype), in file order.
  std::vector<std::pair<std::string, DType>> tensors;
};
const char* format_name(ModelSource::Format f);  // "minivlm", "hf-smolvlm"

struct LoadedModel {
  ModelConfig config;
  std::shared_ptr<Tokenizer> tokenizer;
  std::unique_ptr<MiniMindVLM> model;
  ModelSource source;
};
// Reads a model directory, strictly (every missing, unexpected or misshapen tensor is named):
// - minivlm: DIR/config.json, DIR/tokenizer.json (with the chat template of
//   DIR/chat_template.jinja or DIR/tokenizer_config.json, text/chat_template.h) and
//   DIR/model.safetensors;
// - a Hugging Face SmolVLM / Idefics3 directory (config.json's model_type "smolvlm" or
//   "idefics3"), as transformers saves it: its config and processor files translated
//   (io/hf_smolvlm.h), DIR/tokenizer.json, and DIR/model.safetensors or the shards of
//   DIR/model.safetensors.index.json (f32, f16 or bf16; converted to f32).
// `source` tells which.
LoadedModel load_model_dir(const std::string& dir);
// Writes DIR/config.json, DIR/model.safetensors and a copy of the tokenizer file, with the
// tokenizer_config.json, special_tokens_map.json, chat_template.jinja and chat_template.json
// beside it where they exist.
void save_model_dir(const MiniMindVLM& model, const std::string& tokenizer_json_path,
                    const std::string& dir);
// Writes the model in the layout of the directory it was loaded from:
// - minivlm: as above, with source.dir's tokenizer;
// - hf_smolvlm: DIR/model.safetensors with exactly the source's tensors (HF names, the shapes,
//   each in its source dtype; lm_head.weight only where the source has it), one file even when
//   the source was sharded (stale shards and index in DIR are removed); config.json and every
//   other regular file of source.dir that is not weights (tokenizer, processor, chat template,
//   generation config, README, ...) copied unchanged. Subdirectories (e.g. onnx/) are not copied.
//   transformers' SmolVLMForConditionalGeneration.from_pretrained(DIR) loads it.
void save_model_dir(const MiniMindVLM& model, const ModelSource& source, const std::string& dir);

// Checkpoints keep the model's fp32 weights (for an exact resume) in the layout of its source:
// weights (minivlm names) renamed to the source's names — for hf_smolvlm its HF names in its file
// order, each kept in the dtype given (so a checkpoint directory, with source_files copied beside,
// is itself a directory transformers and every binary load); minivlm names unchanged.
std::vector<std::pair<std::string, Tensor>> weights_in_source_layout(
    const ModelSource& source, const std::vector<std::pair<std::string, Tensor>>& weights);
// The files of source.dir that a directory of its layout carries besides the weights (config,
// tokenizer, processor, chat template): none for minivlm, whose checkpoints hold weights only.
std::vector<std::string> source_files(const ModelSource& source);
// Loads weights written by weights_in_source_layout (strict).
void load_weights_in_source_layout(const MiniMindVLM& model, const ModelSource& source,
                                   const std::string& path);

}  // namespace minivlm
