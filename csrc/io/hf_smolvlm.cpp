#include "io/hf_smolvlm.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_file.h"

namespace minivlm {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// One JSON object of a file, read with HF's defaults for absent (or null) keys; a value of the
// wrong type is an error naming the file and key.
class Obj {
 public:
  Obj(json j, std::string where) : j_(std::move(j)), where_(std::move(where)) {
    MV_CHECK(j_.is_object(), where_, " must be a JSON object");
  }
  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  const json& at(const char* key) const { return j_.at(key); }
  template <typename T>
  T get(const char* key, const T& fallback) const {
    if (!has(key)) return fallback;
    try {
      return j_.at(key).get<T>();
    } catch (const json::exception& e) {
      MV_FAIL(where_, ": ", key, " has the wrong type (", j_.at(key).dump(), ")");
    }
  }
  // image_size / patch_size: an int, or [h, w] with h == w.
  int64_t square(const char* key, int64_t fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (v.is_array()) {
      MV_CHECK(v.size() == 2 && v[0].is_number_integer() && v[0] == v[1], where_, ": ", key, " ",
               v.dump(), " is not square");
      return v[0].get<int64_t>();
    }
    return get<int64_t>(key, fallback);
  }
  Obj sub(const char* key) const {
    return Obj(has(key) ? j_.at(key) : json::object(), where_ + "." + key);
  }
  const std::string& where() const { return where_; }

 private:
  json j_;
  std::string where_;
};

std::string resample_name(int64_t pil, const std::string& where) {
  switch (pil) {
    case 1:
      return "lanczos";
    case 2:
      return "bilinear";
    case 3:
      return "bicubic";
    default:
      MV_FAIL(where, ": resample ", pil,
              " is not supported (1 LANCZOS, 2 BILINEAR or 3 BICUBIC are)");
  }
}

// rope_theta of a Llama text_config in any of the forms transformers writes: rope_theta at the top
// (transformers 4), rope_parameters {rope_type, rope_theta} (transformers 5), rope_scaling. Only
// the plain RoPE ("default") is implemented.
double llama_rope_theta(const Obj& t) {
  double theta = t.get<double>("rope_theta", 10000.0);
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    if (!t.has(key)) continue;
    const Obj r = t.sub(key);
    const std::string type = r.get<std::string>("rope_type", r.get<std::string>("type", "default"));
    MV_CHECK(type == "default", t.where(), ".", key, ": rope_type \"", type,
             "\" is not supported (only plain RoPE, rope_type \"default\", is implemented)");
    theta = r.get<double>("rope_theta", theta);
  }
  return theta;
}

// The image processor's settings: preprocessor_config.json (transformers 4 and the released
// models) or the "image_processor" of processor_config.json (transformers 5).
std::optional<Obj> image_processor(const fs::path& dir) {
  if (fs::exists(dir / "preprocessor_config.json"))
    return Obj(read_json_file((dir / "preprocessor_config.json").string()),
               (dir / "preprocessor_config.json").string());
  if (fs::exists(dir / "processor_config.json")) {
    const Obj p(read_json_file((dir / "processor_config.json").string()),
                (dir / "processor_config.json").string());
    if (p.has("image_processor")) return p.sub("image_processor");
  }
  return std::nullopt;
}

std::optional<Obj> video_processor(const fs::path& dir) {
  if (fs::exists(dir / "video_preprocessor_config.json"))
    return Obj(read_json_file((dir / "video_preprocessor_config.json").string()),
               (dir / "video_preprocessor_config.json").string());
  if (fs::exists(dir / "processor_config.json")) {
    const Obj p(read_json_file((dir / "processor_config.json").string()),
                (dir / "processor_config.json").string());
    if (p.has("video_processor")) return p.sub("video_processor");
  }
  if (fs::exists(dir / "preprocessor_config.json")) {  // SmolVLM2's releases keep it here
    const Obj p(read_json_file((dir / "preprocessor_config.json").string()),
                (dir / "preprocessor_config.json").string());
    if (p.has("video_sampling")) return p;
  }
  return std::nullopt;
}

}  // namespace

bool is_hf_smolvlm_dir(const std::string& dir) {
  const fs::path path = fs::path(dir) / "config.json";
  if (!fs::exists(path)) return false;
  const json j = read_json_file(path.string());
  if (!j.is_object() || !j.contains("model_type") || !j["model_type"].is_string()) return false;
  const std::string t = j["model_type"].get<std::string>();
  return t == "smolvlm" || t == "idefics3";
}

HfSmolVLMConfig hf_smolvlm_config(const std::string& dir_str, bool has_lm_head) {
  const fs::path dir(dir_str);
  const std::string cfg_path = (dir / "config.json").string();
  const Obj top(read_json_file(cfg_path), cfg_path);
  const std::string model_type = top.get<std::string>("model_type", "");
  MV_CHECK(model_type == "smolvlm" || model_type == "idefics3", cfg_path,
           ": model_type must be \"smolvlm\" or \"idefics3\", got \"", model_type, "\"");

  json v = json::object(), l = json::object(), p = json::object();
  // Vision: SmolVLMVisionConfig / Idefics3VisionConfig (same keys and defaults).
  const Obj vc = top.sub("vision_config");
  v["type"] = "smolvlm";
  v["image_size"] = vc.square("image_size", 224);
  v["patch_size"] = vc.square("patch_size", 32);
  v["num_channels"] = vc.get<int64_t>("num_channels", 3);
  v["hidden_size"] = vc.get<int64_t>("hidden_size", 1152);
  v["num_hidden_layers"] = vc.get<int64_t>("num_hidden_layers", 12);
  v["num_attention_heads"] = vc.get<int64_t>("num_attention_heads", 16);
  v["intermediate_size"] = vc.get<int64_t>("intermediate_size", 3072);
  v["layer_norm_eps"] = vc.get<double>("layer_norm_eps", 1e-6);
  v["hidden_act"] = vc.get<std::string>("hidden_act", "gelu_pytorch_tanh");

  // Connector: pixel shuffle by scale_factor, then a bias-free Linear.
  p["type"] = "linear";
  p["pixel_shuffle"] = top.get<int64_t>("scale_factor", 2);
  p["bias"] = false;

  // Text: a Llama config.
  const Obj tc = top.sub("text_config");
  const std::string text_type = tc.get<std::string>("model_type", "llama");
  MV_CHECK(text_type == "llama", tc.where(), ": model_type \"", text_type,
           "\" is not supported (only a Llama text model is)");
  MV_CHECK(tc.get<std::string>("hidden_act", "silu") == "silu", tc.where(), ": hidden_act \"",
           tc.get<std::string>("hidden_act", "silu"), "\" is not supported (only silu is)");
  MV_CHECK(!tc.get<bool>("attention_bias", false) && !tc.get<bool>("mlp_bias", false), tc.where(),
           ": attention_bias / mlp_bias are not supported");
  const int64_t hidden = tc.get<int64_t>("hidden_size", 4096);
  const int64_t heads = tc.get<int64_t>("num_attention_heads", 32);
  MV_CHECK(heads > 0, tc.where(), ": num_attention_heads must be positive");
  l["vocab_size"] = tc.get<int64_t>("vocab_size", 32000);
  l["hidden_size"] = hidden;
  l["num_hidden_layers"] = tc.get<int64_t>("num_hidden_layers", 32);
  l["num_attention_heads"] = heads;
  l["num_key_value_heads"] = tc.get<int64_t>("num_key_value_heads", heads);
  l["head_dim"] = tc.get<int64_t>("head_dim", hidden / heads);
  l["intermediate_size"] = tc.get<int64_t>("intermediate_size", 11008);
  l["rope_theta"] = llama_rope_theta(tc);
  l["rms_norm_eps"] = tc.get<double>("rms_norm_eps", 1e-5);  // SmolVLMConfig's text default
  l["max_position_embeddings"] = tc.get<int64_t>("max_position_embeddings", 2048);
  l["qk_norm"] = false;
  {
    // transformers 5 ties by the top-level value (default false); transformers 4 by text_config's.
    const bool has_top = top.has("tie_word_embeddings"), has_text = tc.has("tie_word_embeddings");
    const bool top_tie = top.get<bool>("tie_word_embeddings", false);
    const bool text_tie = tc.get<bool>("tie_word_embeddings", false);
    bool tie = has_top ? top_tie : text_tie;
    if (has_top && has_text && top_tie != text_tie) tie = !has_lm_head;
    l["tie_word_embeddings"] = tie;
  }

  // The image token: its text from the tokenizer config, its id from config.json.
  HfSmolVLMConfig out;
  out.image_token_id = top.get<int64_t>("image_token_id", 128257);
  std::string image_token = "<image>";
  if (fs::exists(dir / "tokenizer_config.json")) {
    const Obj tk(read_json_file((dir / "tokenizer_config.json").string()),
                 (dir / "tokenizer_config.json").string());
    if (tk.has("image_token"))
      image_token = tk.get<std::string>("image_token", image_token);
    else if (tk.has("extra_special_tokens") && tk.at("extra_special_tokens").is_object())
      image_token = tk.sub("extra_special_tokens").get<std::string>("image_token", image_token);
  }

  // Image processing.
  if (const auto ip = image_processor(dir)) {
    if (ip->has("resample"))
      v["resample"] = resample_name(ip->get<int64_t>("resample", 1), ip->where());
    else
      v["resample"] = "lanczos";  // SmolVLMImageProcessor's default
    v["longest_edge"] = ip->sub("size").get<int64_t>("longest_edge", 0);
    if (ip->has("max_image_size")) {
      const int64_t tile = ip->sub("max_image_size").get<int64_t>("longest_edge", 0);
      MV_CHECK(tile == v["image_size"].get<int64_t>(), ip->where(),
               ": max_image_size.longest_edge ", tile, " differs from ", cfg_path,
               ": vision_config.image_size ", v["image_size"].get<int64_t>(),
               " (a tile must be one vision input)");
    }
    v["do_image_splitting"] = ip->get<bool>("do_image_splitting", true);
    // minivlm's SmolVLM processing always resizes to whole tiles, rescales by 1/255 and
    // normalises: without a resize an image would be a partly padded tile (pixel and patch
    // attention masks), which it does not compute.
    for (const char* key : {"do_resize", "do_rescale", "do_normalize"})
      MV_CHECK(ip->get<bool>(key, true), ip->where(), ": ", key,
               " false is not supported (minivlm's SmolVLM processing resizes to whole tiles, "
               "rescales by 1/255 and normalises)");
    const double rescale = ip->get<double>("rescale_factor", 1.0 / 255.0);
    MV_CHECK(std::abs(rescale - 1.0 / 255.0) < 1e-12, ip->where(), ": rescale_factor ", rescale,
             " is not supported (only 1/255)");
    for (const char* key : {"image_mean", "image_std"}) {
      if (!ip->has(key)) continue;
      const std::vector<double> m = ip->get<std::vector<double>>(key, {});
      MV_CHECK(m.size() == 3, ip->where(), ": ", key, " must have 3 values");
      v[key] = m;
    }
  } else {
    v["resample"] = "lanczos";
    v["image_mean"] = {0.5, 0.5, 0.5};  // SmolVLMImageProcessor's IMAGENET_STANDARD_MEAN / STD
    v["image_std"] = {0.5, 0.5, 0.5};
  }
  if (!v.contains("image_mean")) v["image_mean"] = {0.5, 0.5, 0.5};
  if (!v.contains("image_std")) v["image_std"] = {0.5, 0.5, 0.5};

  // Video sampling (SmolVLM2).
  if (const auto vp = video_processor(dir)) {
    if (vp->has("video_sampling")) {
      const Obj s = vp->sub("video_sampling");
      if (s.has("fps")) v["video_fps"] = s.get<double>("fps", 1.0);
      if (s.has("max_frames")) v["video_max_frames"] = s.get<int64_t>("max_frames", 64);
      if (s.has("video_size"))
        v["video_longest_edge"] = s.sub("video_size").get<int64_t>("longest_edge", 0);
    } else {
      if (vp->has("fps")) v["video_fps"] = vp->get<double>("fps", 1.0);
      if (vp->has("num_frames")) v["video_max_frames"] = vp->get<int64_t>("num_frames", 64);
      if (vp->has("size"))
        v["video_longest_edge"] = vp->sub("size").get<int64_t>("longest_edge", 0);
    }
  }

  out.config = ModelConfig::from_json(json{{"model_type", "minivlm"},
                                           {"llm", l},
                                           {"vision", v},
                                           {"projector", p},
                                           {"image_token", image_token}},
                                      cfg_path);
  return out;
}

std::string hf_smolvlm_to_minivlm(const std::string& n) {
  if (starts_with(n, "model.vision_model.")) return "vision_encoder." + n.substr(6);
  if (n == "model.connector.modality_projection.proj.weight") return "vision_proj.proj.weight";
  if (starts_with(n, "model.text_model.")) return "model." + n.substr(17);
  if (n == "lm_head.weight") return n;
  return "";
}

std::string minivlm_to_hf_smolvlm(const std::string& n) {
  if (starts_with(n, "vision_encoder.vision_model.")) return "model." + n.substr(15);
  if (n == "vision_proj.proj.weight") return "model.connector.modality_projection.proj.weight";
  if (starts_with(n, "model.")) return "model.text_model." + n.substr(6);
  if (n == "lm_head.weight") return n;
  return "";
}

}  // namespace minivlm
