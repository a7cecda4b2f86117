#include "nn/config.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <type_traits>

#include "core/error.h"
#include "core/json_file.h"
#include "nn/projector.h"
#include "nn/vision_tower.h"

namespace minivlm {

using nlohmann::json;

namespace {

// A JSON value for an error message: short, and never a dump of a whole nested value.
std::string describe(const json& v) {
  if (!v.is_primitive()) return std::string("a JSON ") + v.type_name();
  std::string s = v.dump();
  return s.size() <= 80 ? s : s.substr(0, 77) + "...";
}

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
    const json& v = j_.at(key);
    // nlohmann converts 3.7 to 3 and 2^64 - 1 to -1 without a word: sizes must be integers that
    // fit, as written.
    if constexpr (std::is_same_v<T, int64_t>) {
      MV_CHECK(v.is_number_integer(), where_, ".", key, ": must be an integer, got ", describe(v));
      MV_CHECK(!v.is_number_unsigned() ||
                   v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
               where_, ".", key, ": ", describe(v), " is out of range");
    }
    if constexpr (std::is_same_v<T, double>)
      MV_CHECK(v.is_number(), where_, ".", key, ": must be a number, got ", describe(v));
    try {
      field = v.get<T>();
    } catch (const json::exception& e) {
      MV_FAIL(where_, ".", key, ": wrong type (", describe(v), "): ", e.what());
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

// Every size within a range a model can have, before anything divides by it, multiplies it or
// allocates from it: zero or negative sizes and head counts, and sizes whose products overflow,
// are refused by name.
void check_ranges(const ModelConfig& c, const std::string& origin) {
  const auto in = [&](const char* name, int64_t v, int64_t lo, int64_t hi) {
    MV_CHECK(v >= lo && v <= hi, origin, ": ", name, " must be in [", lo, ", ", hi, "], got ", v);
  };
  const auto real = [&](const char* name, double v, bool positive) {
    MV_CHECK(std::isfinite(v) && (positive ? v > 0 : v >= 0), origin, ": ", name, " must be ",
             positive ? "positive" : "non-negative", " and finite, got ", v);
  };
  const LlmConfig& L = c.llm;
  in("llm.vocab_size", L.vocab_size, 1, kMaxConfigVocab);
  in("llm.hidden_size", L.hidden_size, 1, kMaxConfigDim);
  in("llm.num_hidden_layers", L.num_hidden_layers, 0, kMaxConfigLayers);
  in("llm.num_attention_heads", L.num_attention_heads, 1, kMaxConfigHeads);
  in("llm.num_key_value_heads", L.num_key_value_heads, 1, kMaxConfigHeads);
  in("llm.head_dim", L.head_dim, 0, kMaxConfigDim);
  in("llm.intermediate_size", L.intermediate_size, 0, kMaxConfigDim);
  in("llm.max_position_embeddings", L.max_position_embeddings, 1, kMaxConfigPositions);
  in("llm.num_experts", L.num_experts, 1, kMaxConfigHeads);
  in("llm.num_experts_per_tok", L.num_experts_per_tok, 1, kMaxConfigHeads);
  in("llm.moe_intermediate_size", L.moe_intermediate_size, 0, kMaxConfigDim);
  real("llm.rope_theta", L.rope_theta, true);
  real("llm.rms_norm_eps", L.rms_norm_eps, false);
  real("llm.router_aux_loss_coef", L.router_aux_loss_coef, false);
  const VisionConfig& V = c.vision;
  in("vision.image_size", V.image_size, 1, kMaxConfigImageSize);
  in("vision.patch_size", V.patch_size, 1, kMaxConfigImageSize);
  in("vision.num_channels", V.num_channels, 1, 4);
  in("vision.hidden_size", V.hidden_size, 1, kMaxConfigDim);
  in("vision.num_hidden_layers", V.num_hidden_layers, 0, kMaxConfigLayers);
  in("vision.num_attention_heads", V.num_attention_heads, 1, kMaxConfigHeads);
  in("vision.intermediate_size", V.intermediate_size, 1, kMaxConfigDim);
  in("vision.longest_edge", V.longest_edge, 0, kMaxConfigImageSize);
  in("vision.video_longest_edge", V.video_longest_edge, 0, kMaxConfigImageSize);
  in("vision.video_max_frames", V.video_max_frames, 1, kMaxConfigVideoFrames);
  real("vision.layer_norm_eps", V.layer_norm_eps, false);
  real("vision.video_fps", V.video_fps, true);
  MV_CHECK(V.video_fps <= 1e6, origin, ": vision.video_fps must be at most 1e6, got ", V.video_fps);
  for (int k = 0; k < 3; ++k) {
    MV_CHECK(std::isfinite(V.image_mean[k]), origin, ": vision.image_mean must be finite");
    real("vision.image_std", V.image_std[k], true);
  }
  in("projector.pixel_shuffle", c.projector.pixel_shuffle, 1, kMaxConfigImageSize);
  real("projector.layer_norm_eps", c.projector.layer_norm_eps, false);

  // The parameter count, overflow-checked (head_dim and intermediate sizes at their largest).
  const int64_t hd = std::max<int64_t>(L.head_dim, L.hidden_size);
  const int64_t ffn = std::max({L.intermediate_size, L.moe_intermediate_size, 4 * L.hidden_size});
  int64_t total = 0;
  bool overflow = false;
  const auto add_product = [&](std::initializer_list<int64_t> factors) {
    int64_t p = 1;
    for (int64_t f : factors) overflow |= __builtin_mul_overflow(p, f, &p);
    overflow |= __builtin_add_overflow(total, p, &total);
  };
  add_product({2, L.vocab_size, L.hidden_size});
  add_product({L.num_hidden_layers, 2 * L.num_attention_heads + 2 * L.num_key_value_heads, hd,
               L.hidden_size});
  add_product({L.num_hidden_layers, L.use_moe ? L.num_experts : 1, 3, ffn, L.hidden_size});
  add_product({V.num_hidden_layers, 4 * V.hidden_size + 2 * V.intermediate_size, V.hidden_size});
  add_product({V.image_size / V.patch_size + 1, V.image_size / V.patch_size + 1, V.hidden_size});
  add_product({V.patch_size, V.patch_size, V.num_channels, V.hidden_size});
  add_product(
      {V.hidden_size, c.projector.pixel_shuffle, c.projector.pixel_shuffle, 2, L.hidden_size});
  MV_CHECK(!overflow && total <= kMaxConfigParams, origin, ": the sizes make a model of more than ",
           kMaxConfigParams, " parameters (or overflow); not a model this program can hold");
}

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

  check_ranges(c, origin);

  // Derived defaults and consistency.
  auto& L = c.llm;
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
  return from_json(read_json_file(path, "model config"), path);
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
