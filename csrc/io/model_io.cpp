#include "io/model_io.h"

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

void import_hf_clip_vision(const MiniMindVLM& model, const std::string& path) {
  ImportRule rule;
  rule.what = "Hugging Face CLIP vision tower";
  rule.map = [](const std::string& n) -> std::string {
    if (ends_with(n, ".position_ids")) return "";
    if (starts_with(n, "vision_model.")) return "vision_encoder." + n;
    return "";  // text_model.*, logit_scale, *_projection belong to the text side
  };
  rule.required = [](const std::string& n) { return starts_with(n, "vision_encoder."); };
  import_weights(model, path, rule);
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
  for (const char* name : {"tokenizer_config.json", "special_tokens_map.json"}) {
    const fs::path from = from_dir / name, to = fs::path(dir) / name;
    if (same_file(from, to)) continue;
    if (fs::exists(from))
      copy_readable(from, to);
    else
      fs::remove(to);
  }
}

}  // namespace minivlm
