#include "nn/config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "nn/projector.h"
#include "nn/vision_tower.h"

namespace minivlm {

using nlohmann::json;

namespace {

// Reads known keys of one JSON object into fields; any other key is an error naming it and the
// valid keys.
class Reader {
 public:
  Reader(const json& j, std::string where) : j_(j), where_(std::move(where)) {
    MV_CHECK(j.is_object(), where_, " must be a JSON object");
  }
  template <typename T>
  void get(const char* key, T& field) {
    known_.insert(key);
    if (!j_.contains(key)) return;
    try {
      field = j_.at(key).get<T>();
    } catch (const json::exception& e) {
      MV_FAIL(where_, ".", key, ": wrong type (", j_.at(key).dump(), "): ", e.what());
    }
  }
  void finish() const {
    for (const auto& [k, v] : j_.items()) {
      if (known_.count(k)) continue;
      std::string valid;
      for (const auto& n : known_) {
        if (!valid.empty()) valid += ", ";
        valid += n;
      }
      MV_FAIL(where_, ": unknown key '", k, "' (valid keys: ", valid, ")");
    }
  }

 private:
  const json& j_;
  std::string where_;
  std::set<std::string> known_;
};

}  // namespace

int64_t ModelConfig::tokens_per_image() const {
  const int64_t gr = vision.grid() / projector.pixel_shuffle;
  return gr * gr;
}

int64_t ModelConfig::projector_in() const {
  return vision.hidden_size * projector.pixel_shuffle * projector.pixel_shuffle;
}

ModelConfig ModelConfig::from_json(const json& j, const std::string& origin) {
  ModelConfig c;
  Reader top(j, origin);
  std::string model_type = "minivlm";
  top.get("model_type", model_type);
  MV_CHECK(model_type == "minivlm", origin, ": model_type must be \"minivlm\", got \"", model_type,
           "\"");
  top.get("image_token", c.image_token);
  json llm = json::object(), vision = json::object(), proj = json::object();
  top.get("llm", llm);
  top.get("vision", vision);
  top.get("projector", proj);
  top.finish();

  Reader l(llm, origin + ": llm");
  l.get("vocab_size", c.llm.vocab_size);
  l.get("hidden_size", c.llm.hidden_size);
  l.get("num_hidden_layers", c.llm.num_hidden_layers);
  l.get("num_attention_heads", c.llm.num_attention_heads);
  l.get("num_key_value_heads", c.llm.num_key_value_heads);
  l.get("head_dim", c.llm.head_dim);
  l.get("intermediate_size", c.llm.intermediate_size);
  l.get("rope_theta", c.llm.rope_theta);
  l.get("rms_norm_eps", c.llm.rms_norm_eps);
  l.get("qk_norm", c.llm.qk_norm);
  l.get("tie_word_embeddings", c.llm.tie_word_embeddings);
  l.get("max_position_embeddings", c.llm.max_position_embeddings);
  l.get("use_moe", c.llm.use_moe);
  l.get("num_experts", c.llm.num_experts);
  l.get("num_experts_per_tok", c.llm.num_experts_per_tok);
  l.get("moe_intermediate_size", c.llm.moe_intermediate_size);
  l.get("norm_topk_prob", c.llm.norm_topk_prob);
  l.get("router_aux_loss_coef", c.llm.router_aux_loss_coef);
  l.finish();

  Reader v(vision, origin + ": vision");
  v.get("type", c.vision.type);
  v.get("image_size", c.vision.image_size);
  v.get("patch_size", c.vision.patch_size);
  v.get("num_channels", c.vision.num_channels);
  v.get("hidden_size", c.vision.hidden_size);
  v.get("num_hidden_layers", c.vision.num_hidden_layers);
  v.get("num_attention_heads", c.vision.num_attention_heads);
  v.get("intermediate_size", c.vision.intermediate_size);
  v.get("layer_norm_eps", c.vision.layer_norm_eps);
  v.get("hidden_act", c.vision.hidden_act);
  v.get("image_mean", c.vision.image_mean);
  v.get("image_std", c.vision.image_std);
  v.get("resample", c.vision.resample);
  v.get("longest_edge", c.vision.longest_edge);
  v.get("do_image_splitting", c.vision.do_image_splitting);
  v.get("video_fps", c.vision.video_fps);
  v.get("video_max_frames", c.vision.video_max_frames);
  v.get("video_longest_edge", c.vision.video_longest_edge);
  v.finish();

  Reader p(proj, origin + ": projector");
  p.get("type", c.projector.type);
  p.get("pixel_shuffle", c.projector.pixel_shuffle);
  p.get("bias", c.projector.bias);
  p.get("layer_norm_eps", c.projector.layer_norm_eps);
  p.finish();

  // Derived defaults and consistency.
  auto& L = c.llm;
  MV_CHECK(L.hidden_size > 0 && L.num_attention_heads > 0 && L.num_key_value_heads > 0 &&
               L.vocab_size > 0 && L.num_hidden_layers >= 0,
           origin, ": llm sizes must be positive");
  if (L.head_dim == 0) {
    MV_CHECK(L.hidden_size % L.num_attention_heads == 0, origin, ": llm.hidden_size ",
             L.hidden_size, " is not divisible by num_attention_heads ", L.num_attention_heads,
             " (set head_dim)");
    L.head_dim = L.hidden_size / L.num_attention_heads;
  }
  if (L.intermediate_size == 0) {
    const int64_t raw = L.hidden_size * 8 / 3;
    L.intermediate_size = 64 * ((raw + 63) / 64);
  }
  MV_CHECK(L.num_attention_heads % L.num_key_value_heads == 0, origin, ": num_attention_heads ",
           L.num_attention_heads, " is not a multiple of num_key_value_heads ",
           L.num_key_value_heads);
  if (L.moe_intermediate_size == 0) L.moe_intermediate_size = L.intermediate_size;
  if (L.use_moe) {
    MV_CHECK(
        L.num_experts >= 1 && L.num_experts_per_tok >= 1 && L.num_experts_per_tok <= L.num_experts,
        origin, ": llm.num_experts_per_tok must be in [1, num_experts ", L.num_experts, "], got ",
        L.num_experts_per_tok);
    MV_CHECK(L.moe_intermediate_size > 0 && L.router_aux_loss_coef >= 0, origin,
             ": llm.moe_intermediate_size must be positive and router_aux_loss_coef >= 0");
  }
  MV_CHECK(L.head_dim % 2 == 0, origin, ": head_dim must be even for RoPE, got ", L.head_dim);
  auto& V = c.vision;
  check_vision_config(V, origin);
  MV_CHECK(V.resample == "bicubic" || V.resample == "bilinear" || V.resample == "lanczos", origin,
           ": vision.resample must be bicubic, bilinear or lanczos, got ", V.resample);
  MV_CHECK(V.longest_edge >= 0 && V.video_longest_edge >= 0 && V.video_max_frames >= 1 &&
               V.video_fps > 0,
           origin,
           ": vision.longest_edge and video_longest_edge must be >= 0, video_max_frames >= 1 and "
           "video_fps > 0");
  // A remainder is allowed: the patch convolution is "valid" (SigLIP-SO400M's 384 px / 14 px
  // patches: a 27 × 27 grid, the last 6 pixel rows and columns unseen).
  MV_CHECK(V.patch_size > 0 && V.image_size >= V.patch_size, origin, ": vision.image_size ",
           V.image_size, " is smaller than patch_size ", V.patch_size);
  MV_CHECK(V.hidden_size % V.num_attention_heads == 0, origin, ": vision.hidden_size ",
           V.hidden_size, " is not divisible by num_attention_heads ", V.num_attention_heads);
  MV_CHECK(c.projector.pixel_shuffle >= 1 && V.grid() % c.projector.pixel_shuffle == 0, origin,
           ": vision grid ", V.grid(),
           " (image_size / patch_size) is not divisible by "
           "projector.pixel_shuffle ",
           c.projector.pixel_shuffle);
  check_projector_config(c, origin);
  return c;
}

ModelConfig ModelConfig::from_file(const std::string& path) {
  std::ifstream f(path);
  MV_CHECK(f.good(), "cannot open model config ", path);
  json j;
  try {
    j = json::parse(f);
  } catch (const json::exception& e) {
    MV_FAIL(path, ": not valid JSON: ", e.what());
  }
  return from_json(j, path);
}

json ModelConfig::to_json() const {
  json proj{{"pixel_shuffle", projector.pixel_shuffle}, {"bias", projector.bias}};
  if (projector.type != ProjectorConfig{}.type) proj["type"] = projector.type;
  if (projector.type == "mlp") proj["layer_norm_eps"] = projector.layer_norm_eps;
  json out = json{{"model_type", "minivlm"},
                  {"llm",
                   {{"vocab_size", llm.vocab_size},
                    {"hidden_size", llm.hidden_size},
                    {"num_hidden_layers", llm.num_hidden_layers},
                    {"num_attention_heads", llm.num_attention_heads},
                    {"num_key_value_heads", llm.num_key_value_heads},
                    {"head_dim", llm.head_dim},
                    {"intermediate_size", llm.intermediate_size},
                    {"rope_theta", llm.rope_theta},
                    {"rms_norm_eps", llm.rms_norm_eps},
                    {"qk_norm", llm.qk_norm},
                    {"tie_word_embeddings", llm.tie_word_embeddings},
                    {"max_position_embeddings", llm.max_position_embeddings}}},
                  {"vision",
                   {{"type", vision.type},
                    {"image_size", vision.image_size},
                    {"patch_size", vision.patch_size},
                    {"num_channels", vision.num_channels},
                    {"hidden_size", vision.hidden_size},
                    {"num_hidden_layers", vision.num_hidden_layers},
                    {"num_attention_heads", vision.num_attention_heads},
                    {"intermediate_size", vision.intermediate_size},
                    {"layer_norm_eps", vision.layer_norm_eps},
                    {"hidden_act", vision.hidden_act},
                    {"image_mean", vision.image_mean},
                    {"image_std", vision.image_std}}},
                  {"projector", proj},
                  {"image_token", image_token}};
  if (vision.resample != VisionConfig{}.resample) out["vision"]["resample"] = vision.resample;
  if (vision.type == "smolvlm") {
    json& v = out["vision"];
    v["longest_edge"] = vision.longest_edge;
    v["do_image_splitting"] = vision.do_image_splitting;
    v["video_fps"] = vision.video_fps;
    v["video_max_frames"] = vision.video_max_frames;
    v["video_longest_edge"] = vision.video_longest_edge;
  }
  if (llm.use_moe) {
    json& l = out["llm"];
    l["use_moe"] = true;
    l["num_experts"] = llm.num_experts;
    l["num_experts_per_tok"] = llm.num_experts_per_tok;
    l["moe_intermediate_size"] = llm.moe_intermediate_size;
    l["norm_topk_prob"] = llm.norm_topk_prob;
    l["router_aux_loss_coef"] = llm.router_aux_loss_coef;
  }
  return out;
}

}  // namespace minivlm
