#include "io/model_io.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/json_file.h"
#include "io/hf_smolvlm.h"
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

// The tensors of one safetensors file, or of the shards a model.safetensors.index.json lists.
class WeightFiles {
 public:
  static WeightFiles single(const std::string& path) {
    WeightFiles w;
    w.path_ = path;
    w.add(SafeTensorsFile::open(path));
    return w;
  }
  static WeightFiles sharded(const std::string& index_path);

  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& n) const { return where_.count(n) != 0; }
  DType dtype(const std::string& n) const { return file(n).dtype(n); }
  const Shape& shape(const std::string& n) const { return file(n).shape(n); }
  Tensor get(const std::string& n) const { return file(n).get(n); }
  const std::string& path() const { return path_; }

 private:
  const SafeTensorsFile& file(const std::string& n) const { return files_.at(where_.at(n)); }
  void add(SafeTensorsFile f) {
    for (const std::string& n : f.names()) {
      MV_CHECK(!where_.count(n), "tensor ", n, " is in both ", files_[where_.at(n)].path(), " and ",
               f.path());
      where_[n] = files_.size();
      names_.push_back(n);
    }
    files_.push_back(std::move(f));
  }
  std::string path_;
  std::vector<SafeTensorsFile> files_;
  std::vector<std::string> names_;
  std::map<std::string, size_t> where_;
};

WeightFiles WeightFiles::sharded(const std::string& index_path) {
  const nlohmann::json index = read_json_file(index_path, "weight index");
  MV_CHECK(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
           index_path, ": no weight_map object");
  std::map<std::string, std::set<std::string>> shards;  // file → the tensors the index puts there
  for (const auto& [name, file] : index.at("weight_map").items()) {
    MV_CHECK(file.is_string(), index_path, ": weight_map[", name, "] is not a file name");
    const std::string shard = file.get<std::string>();
    MV_CHECK(shard.find('/') == std::string::npos && shard != ".." && !shard.empty(), index_path,
             ": shard name '", shard, "' is not a file in the directory");
    shards[shard].insert(name);
  }
  WeightFiles w;
  w.path_ = index_path;
  const fs::path dir = fs::path(index_path).parent_path();
  std::vector<std::string> diffs;
  for (const auto& [shard, listed] : shards) {
    SafeTensorsFile file = SafeTensorsFile::open((dir / shard).string());
    for (const std::string& n : listed)
      if (!file.contains(n)) diffs.push_back(n + ": listed in " + shard + " but not there");
    for (const std::string& n : file.names())
      if (!listed.count(n)) diffs.push_back(n + ": in " + shard + " but not in the index");
    w.add(std::move(file));
  }
  MV_CHECK(diffs.empty(), index_path, " does not match its shards:", join_lines(diffs));
  return w;
}

bool tensors_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_float_vector() == b.to_float_vector();
}

// Shared by strict loading and importers: matches file tensors to model tensors, reports every
// problem at once, then copies.
void copy_matched(const MiniMindVLM& model, const WeightFiles& file, const ImportRule& rule) {
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
  // Non-finite weights (a diverged run's file) are named, not run silently. A warning, not an
  // error: the training guards then skip and stop on the non-finite steps they cause.
  std::vector<std::string> nonfinite;
  for (const auto& [mname, fname] : matched) {
    Tensor p = params.at(mname).detach();
    p.copy_(file.get(fname));
    const int64_t bad = p.out_of_range().count;
    if (bad > 0)
      nonfinite.push_back(fname + ": " + std::to_string(bad) + " of " + std::to_string(p.numel()) +
                          " values are NaN or infinite");
  }
  if (!nonfinite.empty())
    std::fprintf(stderr, "warning: %s holds non-finite weights:%s\n", file.path().c_str(),
                 join_lines(nonfinite).c_str());
}

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

}  // namespace

void load_weights(const MiniMindVLM& model, const std::string& path) {
  copy_matched(model, WeightFiles::single(path),
               {[](const std::string& n) { return n; }, [](const std::string&) { return true; },
                "strict load"});
}

void save_weights(const MiniMindVLM& model, const std::string& path) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const NamedTensor& p : model.params()) out.emplace_back(p.name, p.tensor.detach());
  save_safetensors(path, out, {{"format", "pt"}, {"producer", "minivlm"}});
}

void import_weights(const MiniMindVLM& model, const std::string& path, const ImportRule& rule) {
  copy_matched(model, WeightFiles::single(path), rule);
}

namespace {

// The differences between a Hugging Face vision folder and the model's vision config.
void check_hf_vision_folder_values(const VisionConfig& v, const std::string& dir) {
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

// A value of the wrong type in the folder's files is an error naming the folder.
void check_hf_vision_folder(const VisionConfig& v, const std::string& dir) {
  try {
    check_hf_vision_folder_values(v, dir);
  } catch (const nlohmann::json::exception& e) {
    MV_FAIL(dir, ": config.json or preprocessor_config.json holds a value of the wrong type (",
            e.what(), ")");
  }
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

const char* format_name(ModelSource::Format f) {
  switch (f) {
    case ModelSource::Format::minivlm:
      return "minivlm";
    case ModelSource::Format::hf_smolvlm:
      return "hf-smolvlm";
  }
  return "?";
}

namespace {

void check_tokenizer_fits(const LoadedModel& m, const std::string& dir) {
  MV_CHECK(m.tokenizer->vocab_size() <= m.config.llm.vocab_size, dir, ": the tokenizer has ",
           m.tokenizer->vocab_size(), " tokens but llm.vocab_size is ", m.config.llm.vocab_size);
}

// model.safetensors, else the shards of model.safetensors.index.json (transformers' order).
WeightFiles hf_weight_files(const std::string& dir) {
  const fs::path d(dir);
  if (fs::exists(d / "model.safetensors"))
    return WeightFiles::single((d / "model.safetensors").string());
  MV_CHECK(fs::exists(d / "model.safetensors.index.json"), dir,
           ": no model.safetensors or model.safetensors.index.json");
  return WeightFiles::sharded((d / "model.safetensors.index.json").string());
}

// A Hugging Face SmolVLM / Idefics3 directory (io/hf_smolvlm.h).
LoadedModel load_hf_smolvlm_dir(const std::string& dir) {
  LoadedModel m;
  const fs::path d(dir);
  const WeightFiles files = hf_weight_files(dir);
  const HfSmolVLMConfig hf = hf_smolvlm_config(dir, files.contains("lm_head.weight"));
  m.config = hf.config;
  m.tokenizer = std::make_shared<Tokenizer>(Tokenizer::from_file((d / "tokenizer.json").string()));
  const int64_t image_id = m.tokenizer->token_to_id(m.config.image_token);
  MV_CHECK(image_id == hf.image_token_id, dir, ": the tokenizer's id of ", m.config.image_token,
           " is ", image_id, " but config.json's image_token_id is ", hf.image_token_id);
  check_tokenizer_fits(m, dir);
  m.model = std::make_unique<MiniMindVLM>(m.config, image_id);
  ImportRule rule;
  rule.what = "Hugging Face SmolVLM";
  rule.map = [](const std::string& n) -> std::string {
    const std::string mapped = hf_smolvlm_to_minivlm(n);
    return mapped.empty() ? "(not a SmolVLM tensor) " + n : mapped;  // reported as unexpected
  };
  rule.required = [](const std::string&) { return true; };
  copy_matched(*m.model, files, rule);
  m.source.format = ModelSource::Format::hf_smolvlm;
  m.source.dir = dir;
  for (const std::string& n : files.names()) m.source.tensors.emplace_back(n, files.dtype(n));
  return m;
}

void copy_readable(const fs::path& from, const fs::path& to) {
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                          fs::perms::others_read);
}

bool same_file(const fs::path& a, const fs::path& b) {
  return fs::absolute(a).lexically_normal() == fs::absolute(b).lexically_normal();
}

// Weights in any of the formats a Hugging Face directory may hold them.
bool is_weight_file(const std::string& name) {
  for (const char* ext :
       {".safetensors", ".safetensors.index.json", ".bin", ".bin.index.json", ".pth", ".pt",
        ".ckpt", ".h5", ".msgpack", ".onnx", ".onnx_data", ".gguf"})
    if (ends_with(name, ext)) return true;
  return false;
}

// `weights` (minivlm names) under the source's HF names in its file order: the tied embedding
// stands for an lm_head.weight the source holds; every tensor of either side must be matched.
std::vector<std::pair<std::string, Tensor>> hf_named(const ModelSource& source,
                                                     const std::map<std::string, Tensor>& weights,
                                                     bool source_dtypes, const std::string& what) {
  MV_CHECK(!source.tensors.empty(), what, ": the source ", source.dir, " lists no tensors");
  std::vector<std::pair<std::string, Tensor>> out;
  std::set<std::string> written;
  for (const auto& [hf_name, dtype] : source.tensors) {
    std::string name = hf_smolvlm_to_minivlm(hf_name);
    if (name == "lm_head.weight" && !weights.count(name)) name = "model.embed_tokens.weight";
    auto it = weights.find(name);
    MV_CHECK(it != weights.end(), what, ": the source's tensor ", hf_name, " is not in the model");
    const Tensor& t = it->second;
    out.emplace_back(hf_name, !source_dtypes || t.dtype() == dtype ? t : t.to(dtype));
    written.insert(name);
  }
  for (const auto& [name, t] : weights)
    MV_CHECK(written.count(name), what, ": the model's tensor ", name, " is not in the source ",
             source.dir);
  return out;
}

void save_hf_smolvlm_dir(const MiniMindVLM& model, const ModelSource& source,
                         const std::string& dir) {
  fs::create_directories(dir);
  std::map<std::string, Tensor> params;
  for (const NamedTensor& p : model.params()) params.emplace(p.name, p.tensor.detach());
  save_safetensors((fs::path(dir) / "model.safetensors").string(),
                   hf_named(source, params, /*source_dtypes=*/true, "saving " + dir),
                   {{"format", "pt"}});
  // One file now: shards and an index left from an earlier save would shadow or contradict it.
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n == "model.safetensors.index.json" ||
        (starts_with(n, "model-") && ends_with(n, ".safetensors")))
      fs::remove(e.path());
  }
  for (const std::string& from : source_files(source)) {
    const fs::path to = fs::path(dir) / fs::path(from).filename();
    if (!same_file(from, to)) copy_readable(from, to);
  }
}

}  // namespace

LoadedModel load_model_dir(const std::string& dir) {
  MV_CHECK(fs::is_directory(dir), "model directory ", dir, " does not exist");
  if (is_hf_smolvlm_dir(dir)) return load_hf_smolvlm_dir(dir);
  LoadedModel m;
  m.config = ModelConfig::from_file(dir + "/config.json");
  m.tokenizer = std::make_shared<Tokenizer>(Tokenizer::from_file(dir + "/tokenizer.json"));
  const int64_t image_id = m.tokenizer->token_to_id(m.config.image_token);
  check_tokenizer_fits(m, dir);
  m.model = std::make_unique<MiniMindVLM>(m.config, image_id);
  load_weights(*m.model, dir + "/model.safetensors");
  m.source.dir = dir;
  return m;
}

void save_model_dir(const MiniMindVLM& model, const ModelSource& source, const std::string& dir) {
  if (source.format == ModelSource::Format::hf_smolvlm)
    save_hf_smolvlm_dir(model, source, dir);
  else
    save_model_dir(model, (fs::path(source.dir) / "tokenizer.json").string(), dir);
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
  if (!same_file(tokenizer_json_path, dir + "/tokenizer.json"))
    copy_readable(tokenizer_json_path, dir + "/tokenizer.json");
  // The files a Hugging Face tokenizer keeps beside it: tokenizer_config.json, chat_template.jinja
  // and chat_template.json hold the chat template (text/chat_template.h), so the directory keeps
  // its chat format. One the source lacks is removed, so a stale template never outlives its
  // tokenizer.
  const fs::path from_dir = fs::path(tokenizer_json_path).parent_path();
  for (const char* name : {"tokenizer_config.json", "special_tokens_map.json",
                           "chat_template.jinja", "chat_template.json"}) {
    const fs::path from = from_dir / name, to = fs::path(dir) / name;
    if (same_file(from, to)) continue;
    if (fs::exists(from))
      copy_readable(from, to);
    else
      fs::remove(to);
  }
}

std::vector<std::pair<std::string, Tensor>> weights_in_source_layout(
    const ModelSource& source, const std::vector<std::pair<std::string, Tensor>>& weights) {
  if (source.format != ModelSource::Format::hf_smolvlm) return weights;
  const std::map<std::string, Tensor> byname(weights.begin(), weights.end());
  return hf_named(source, byname, /*source_dtypes=*/false, "checkpoint of " + source.dir);
}

std::vector<std::string> source_files(const ModelSource& source) {
  std::vector<std::string> out;
  if (source.format != ModelSource::Format::hf_smolvlm) return out;
  for (const auto& e : fs::directory_iterator(source.dir))
    if (e.is_regular_file() && !is_weight_file(e.path().filename().string()))
      out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

void load_weights_in_source_layout(const MiniMindVLM& model, const ModelSource& source,
                                   const std::string& path) {
  if (source.format != ModelSource::Format::hf_smolvlm) return load_weights(model, path);
  ImportRule rule;
  rule.what = "checkpoint in the layout of " + source.dir;
  rule.map = [](const std::string& n) { return hf_smolvlm_to_minivlm(n); };
  rule.required = [](const std::string&) { return true; };
  import_weights(model, path, rule);
}

}  // namespace minivlm
