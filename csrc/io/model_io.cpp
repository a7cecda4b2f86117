#include "io/model_io.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "io/safetensors.h"
#include "text/tokenizer.h"

namespace minivlm {

namespace fs = std::filesystem;

namespace {

std::string join_lines(const std::vector<std::string>& items) {
  std::string s;
  for (const std::string& i : items) s += "\n  " + i;
  return s;
}

bool tensors_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_float_vector() == b.to_float_vector();
}

// Shared by strict loading and importers: matches file tensors to model tensors, reports every
// problem at once, then copies.
void copy_matched(const MiniMindVLM& model, const SafeTensorsFile& file, const ImportRule& rule) {
  std::map<std::string, Tensor> params;
  for (const NamedTensor& p : model.params()) params.emplace(p.name, p.tensor);
  std::vector<std::string> unexpected, misshapen, missing;
  std::map<std::string, std::string> matched;  // model name → file name
  for (const std::string& fname : file.names()) {
    const std::string mname = rule.map(fname);
    if (mname.empty()) continue;
    auto it = params.find(mname);
    if (it == params.end()) {
      if (mname == "lm_head.weight" && model.config().llm.tie_word_embeddings) {
        // Compared with the embedding this load will leave in the model: the file's, if it has one.
        std::string embed_in_file;
        for (const std::string& other : file.names())
          if (rule.map(other) == "model.embed_tokens.weight") embed_in_file = other;
        const Tensor embed = embed_in_file.empty() ? params.at("model.embed_tokens.weight").detach()
                                                   : file.get(embed_in_file);
        if (!tensors_equal(file.get(fname), embed))
          misshapen.push_back(fname + ": present in a tied model but differs from the embedding");
        continue;
      }
      unexpected.push_back(fname + " " + shape_str(file.shape(fname)));
      continue;
    }
    if (file.shape(fname) != it->second.shape()) {
      misshapen.push_back(fname + ": file " + shape_str(file.shape(fname)) + ", model " +
                          shape_str(it->second.shape()));
      continue;
    }
    if (!is_floating(file.dtype(fname))) {
      misshapen.push_back(fname + ": dtype " + dtype_name(file.dtype(fname)) + " is not floating");
      continue;
    }
    matched[mname] = fname;
  }
  for (const auto& [name, t] : params)
    if (rule.required(name) && !matched.count(name))
      missing.push_back(name + " " + shape_str(t.shape()));
  if (!missing.empty() || !unexpected.empty() || !misshapen.empty()) {
    std::string msg = file.path() + " does not fit the model (" + rule.what + "):";
    if (!missing.empty()) msg += "\nmissing tensors:" + join_lines(missing);
    if (!unexpected.empty()) msg += "\nunexpected tensors:" + join_lines(unexpected);
    if (!misshapen.empty()) msg += "\nwrong shapes or types:" + join_lines(misshapen);
    MV_FAIL(msg);
  }
  for (const auto& [mname, fname] : matched) params.at(mname).detach().copy_(file.get(fname));
}

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

}  // namespace

void load_weights(const MiniMindVLM& model, const std::string& path) {
  const SafeTensorsFile file = SafeTensorsFile::open(path);
  copy_matched(model, file,
               {[](const std::string& n) { return n; }, [](const std::string&) { return true; },
                "strict load"});
}

void save_weights(const MiniMindVLM& model, const std::string& path) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const NamedTensor& p : model.params()) out.emplace_back(p.name, p.tensor.detach());
  save_safetensors(path, out, {{"format", "pt"}, {"producer", "minivlm"}});
}

void import_weights(const MiniMindVLM& model, const std::string& path, const ImportRule& rule) {
  copy_matched(model, SafeTensorsFile::open(path), rule);
}

namespace {

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream f(path);
  MV_CHECK(f.good(), "cannot open ", path);
  try {
    return nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    MV_FAIL(path, ": not valid JSON: ", e.what());
  }
}

// The differences between a Hugging Face vision folder and the model's vision config.
void check_hf_vision_folder(const VisionConfig& v, const std::string& dir) {
  std::vector<std::string> diffs;
  nlohmann::json cfg = read_json_file(dir + "/config.json");
  if (cfg.contains("vision_config")) cfg = cfg["vision_config"];
  auto same = [&](const char* key, const auto& ours) {
    if (!cfg.contains(key)) return;
    using T = std::decay_t<decltype(ours)>;
    const T theirs = cfg[key].get<T>();
    if (theirs != ours)
      diffs.push_back(std::string(key) + ": " + cfg[key].dump() + " in the folder, " +
                      nlohmann::json(ours).dump() + " in vision");
  };
  same("hidden_size", v.hidden_size);
  same("num_hidden_layers", v.num_hidden_layers);
  same("num_attention_heads", v.num_attention_heads);
  same("intermediate_size", v.intermediate_size);
  same("image_size", v.image_size);
  same("patch_size", v.patch_size);
  same("num_channels", v.num_channels);
  same("hidden_act", v.hidden_act);
  if (cfg.contains("layer_norm_eps") &&
      std::abs(cfg["layer_norm_eps"].get<double>() - v.layer_norm_eps) > 1e-12)
    diffs.push_back("layer_norm_eps: " + cfg["layer_norm_eps"].dump() + " in the folder, " +
                    std::to_string(v.layer_norm_eps) + " in vision");
  const std::string pre_path = dir + "/preprocessor_config.json";
  if (fs::exists(pre_path)) {
    const nlohmann::json pre = read_json_file(pre_path);
    if (pre.contains("resample")) {
      const int r = pre["resample"].get<int>();
      const char* name = r == 2 ? "bilinear" : r == 3 ? "bicubic" : "unsupported";
      if (v.resample != name)
        diffs.push_back("preprocessor resample: " + std::to_string(r) + " (" + name +
                        ") in the folder, " + v.resample + " in vision");
    }
    if (pre.contains("size") && pre["size"].is_object()) {
      const nlohmann::json& size = pre["size"];
      for (const char* key : {"height", "width", "shortest_edge"})
        if (size.contains(key) && size[key].get<int64_t>() != v.image_size)
          diffs.push_back(std::string("preprocessor size.") + key + ": " + size[key].dump() +
                          " in the folder, image_size " + std::to_string(v.image_size) +
                          " in vision");
    }
    for (const char* key : {"image_mean", "image_std"}) {
      if (!pre.contains(key)) continue;
      const std::array<float, 3> ours =
          std::string(key) == "image_mean" ? v.image_mean : v.image_std;
      const std::vector<double> theirs = pre[key].get<std::vector<double>>();
      bool equal = theirs.size() == 3;
      for (size_t i = 0; equal && i < 3; ++i) equal = std::abs(theirs[i] - ours[i]) < 1e-6;
      if (!equal)
        diffs.push_back(std::string("preprocessor ") + key + ": " + pre[key].dump() +
                        " in the folder, " + nlohmann::json(ours).dump() + " in vision");
    }
  }
  MV_CHECK(diffs.empty(), dir, " does not match the model's vision config:", join_lines(diffs));
}

}  // namespace

void import_hf_vision(const MiniMindVLM& model, const std::string& path) {
  const VisionConfig& v = model.config().vision;
  std::string file = path;
  if (fs::is_directory(path)) {
    check_hf_vision_folder(v, path);
    file = path + "/model.safetensors";
  }
  ImportRule rule;
  rule.what = "Hugging Face " + v.type + " vision tower";
  rule.map = [](const std::string& n) -> std::string {
    if (ends_with(n, ".position_ids")) return "";
    if (starts_with(n, "vision_model.head.")) return "";  // SigLIP's pooling head: unused
    if (starts_with(n, "vision_model.")) return "vision_encoder." + n;
    return "";  // text_model.*, logit_scale, *_projection belong to the text side
  };
  rule.required = [](const std::string& n) { return starts_with(n, "vision_encoder."); };
  import_weights(model, file, rule);
}

void import_minimind_llm(const MiniMindVLM& model, const std::string& path) {
  ImportRule rule;
  rule.what = "MiniMind LLM";
  rule.map = [](const std::string& n) -> std::string {
    if (starts_with(n, "model.") || n == "lm_head.weight") return n;
    return "";  // a VLM state dict also carries vision_proj.* / vision_encoder.*
  };
  rule.required = [](const std::string& n) {
    return starts_with(n, "model.") || n == "lm_head.weight";
  };
  import_weights(model, path, rule);
}

LoadedModel load_model_dir(const std::string& dir) {
  LoadedModel m;
  MV_CHECK(fs::is_directory(dir), "model directory ", dir, " does not exist");
  m.config = ModelConfig::from_file(dir + "/config.json");
  m.tokenizer = std::make_shared<Tokenizer>(Tokenizer::from_file(dir + "/tokenizer.json"));
  const int64_t image_id = m.tokenizer->token_to_id(m.config.image_token);
  MV_CHECK(m.tokenizer->vocab_size() <= m.config.llm.vocab_size, dir, ": the tokenizer has ",
           m.tokenizer->vocab_size(), " tokens but llm.vocab_size is ", m.config.llm.vocab_size);
  m.model = std::make_unique<MiniMindVLM>(m.config, image_id);
  load_weights(*m.model, dir + "/model.safetensors");
  return m;
}

void save_model_dir(const MiniMindVLM& model, const std::string& tokenizer_json_path,
                    const std::string& dir) {
  fs::create_directories(dir);
  {
    const std::string tmp = dir + "/config.json.tmp";
    std::ofstream f(tmp);
    f << model.config().to_json().dump(2) << "\n";
    MV_CHECK(f.good(), "cannot write ", tmp);
    f.close();
    fs::rename(tmp, dir + "/config.json");
  }
  save_weights(model, dir + "/model.safetensors");
  const auto same_file = [](const fs::path& a, const fs::path& b) {
    return fs::absolute(a).lexically_normal() == fs::absolute(b).lexically_normal();
  };
  const auto copy_readable = [](const fs::path& from, const fs::path& to) {
    fs::copy_file(from, to, fs::copy_options::overwrite_existing);
    fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                            fs::perms::others_read);
  };
  if (!same_file(tokenizer_json_path, dir + "/tokenizer.json"))
    copy_readable(tokenizer_json_path, dir + "/tokenizer.json");
  // The files a Hugging Face tokenizer keeps beside it: tokenizer_config.json holds the chat
  // template (text/chat_template.h), so the directory keeps its chat format. One the source lacks
  // is removed, so a stale template never outlives its tokenizer.
  const fs::path from_dir = fs::path(tokenizer_json_path).parent_path();
  for (const char* name :
       {"tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"}) {
    const fs::path from = from_dir / name, to = fs::path(dir) / name;
    if (same_file(from, to)) continue;
    if (fs::exists(from))
      copy_readable(from, to);
    else
      fs::remove(to);
  }
}

}  // namespace minivlm
