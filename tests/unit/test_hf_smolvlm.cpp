// Hugging Face SmolVLM directories: load_model_dir reads tests/fixtures/smolvlm-tiny (a tiny random
// SmolVLMForConditionalGeneration saved by transformers, tests/fixtures/make_smolvlm_tiny.py) in
// fp32, bf16, fp16 and sharded, strictly; save_model_dir writes the same layout back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "io/hf_smolvlm.h"
#include "io/model_io.h"
#include "io/safetensors.h"
#include "text/tokenizer.h"

namespace minivlm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

const std::string kFixture = MINIVLM_SOURCE_DIR "/tests/fixtures/smolvlm-tiny";

json read_json(const fs::path& p) {
  std::ifstream f(p);
  return json::parse(f);
}
void write_json(const fs::path& p, const json& j) {
  std::ofstream f(p);
  f << j.dump(2) << "\n";
}
std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// A fresh writable copy of the fixture.
fs::path copy_fixture(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("minivlm_hf_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(kFixture)) {
    fs::copy_file(e.path(), dir / e.path().filename());
    fs::permissions(dir / e.path().filename(), fs::perms::owner_read | fs::perms::owner_write);
  }
  return dir;
}

using Tensors = std::vector<std::pair<std::string, Tensor>>;
Tensors read_tensors(const fs::path& file) {
  const SafeTensorsFile f = SafeTensorsFile::open(file.string());
  Tensors out;
  for (const std::string& n : f.names()) out.emplace_back(n, f.get(n).to(f.dtype(n)));
  return out;
}

// Every model parameter equals the HF tensor it was loaded from (as f32).
void expect_model_equals(const LoadedModel& m, const Tensors& hf) {
  std::map<std::string, Tensor> by_name(hf.begin(), hf.end());
  for (const NamedTensor& p : m.model->params()) {
    const std::string hf_name = minivlm_to_hf_smolvlm(p.name);
    ASSERT_TRUE(by_name.count(hf_name)) << p.name;
    EXPECT_EQ(p.tensor.detach().to_float_vector(), by_name.at(hf_name).to_float_vector()) << p.name;
  }
}

std::string load_error(const fs::path& dir) {
  try {
    load_model_dir(dir.string());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HfSmolVLM, RecognisesTheDirectory) {
  EXPECT_TRUE(is_hf_smolvlm_dir(kFixture));
  EXPECT_FALSE(is_hf_smolvlm_dir(MINIVLM_SOURCE_DIR "/data/tokenizer"));
}

TEST(HfSmolVLM, ConfigMatchesTheHfConfig) {
  const LoadedModel m = load_model_dir(kFixture);
  EXPECT_EQ(m.source.format, ModelSource::Format::hf_smolvlm);
  EXPECT_STREQ(format_name(m.source.format), "hf-smolvlm");
  EXPECT_EQ(m.source.dir, kFixture);
  const json hf = read_json(fs::path(kFixture) / "config.json");
  const json& tc = hf["text_config"];
  const json& vc = hf["vision_config"];
  const ModelConfig& c = m.config;
  EXPECT_EQ(c.llm.vocab_size, tc["vocab_size"].get<int64_t>());
  EXPECT_EQ(c.llm.hidden_size, tc["hidden_size"].get<int64_t>());
  EXPECT_EQ(c.llm.num_hidden_layers, tc["num_hidden_layers"].get<int64_t>());
  EXPECT_EQ(c.llm.num_attention_heads, tc["num_attention_heads"].get<int64_t>());
  EXPECT_EQ(c.llm.num_key_value_heads, tc["num_key_value_heads"].get<int64_t>());
  EXPECT_EQ(c.llm.head_dim, tc["head_dim"].get<int64_t>());
  EXPECT_EQ(c.llm.intermediate_size, tc["intermediate_size"].get<int64_t>());
  EXPECT_EQ(c.llm.rope_theta, tc["rope_parameters"]["rope_theta"].get<double>());
  EXPECT_EQ(c.llm.rms_norm_eps, tc["rms_norm_eps"].get<double>());
  EXPECT_EQ(c.llm.max_position_embeddings, tc["max_position_embeddings"].get<int64_t>());
  EXPECT_TRUE(c.llm.tie_word_embeddings);
  EXPECT_FALSE(c.llm.qk_norm);
  EXPECT_FALSE(c.llm.use_moe);
  EXPECT_EQ(c.vision.type, "smolvlm");
  EXPECT_EQ(c.vision.image_size, vc["image_size"].get<int64_t>());
  EXPECT_EQ(c.vision.patch_size, vc["patch_size"].get<int64_t>());
  EXPECT_EQ(c.vision.num_channels, vc["num_channels"].get<int64_t>());
  EXPECT_EQ(c.vision.hidden_size, vc["hidden_size"].get<int64_t>());
  EXPECT_EQ(c.vision.num_hidden_layers, vc["num_hidden_layers"].get<int64_t>());
  EXPECT_EQ(c.vision.num_attention_heads, vc["num_attention_heads"].get<int64_t>());
  EXPECT_EQ(c.vision.intermediate_size, vc["intermediate_size"].get<int64_t>());
  EXPECT_EQ(c.vision.layer_norm_eps, vc["layer_norm_eps"].get<double>());
  EXPECT_EQ(c.vision.hidden_act, "gelu_pytorch_tanh");
  EXPECT_EQ(c.vision.image_mean, (std::array<float, 3>{0.5f, 0.5f, 0.5f}));
  EXPECT_EQ(c.vision.image_std, (std::array<float, 3>{0.5f, 0.5f, 0.5f}));
  EXPECT_EQ(c.vision.resample, "lanczos");
  EXPECT_EQ(c.vision.longest_edge, 128);
  EXPECT_TRUE(c.vision.do_image_splitting);
  EXPECT_EQ(c.vision.video_fps, 1.0);
  EXPECT_EQ(c.vision.video_max_frames, 8);
  EXPECT_EQ(c.vision.video_longest_edge, 32);
  EXPECT_EQ(c.projector.type, "linear");
  EXPECT_EQ(c.projector.pixel_shuffle, hf["scale_factor"].get<int64_t>());
  EXPECT_FALSE(c.projector.bias);
  EXPECT_EQ(c.image_token, "<image>");
  EXPECT_EQ(m.tokenizer->token_to_id("<image>"), hf["image_token_id"].get<int64_t>());
}

TEST(HfSmolVLM, LoadsTheWeightsByTheirIdefics3Names) {
  const LoadedModel m = load_model_dir(kFixture);
  const Tensors hf = read_tensors(fs::path(kFixture) / "model.safetensors");
  expect_model_equals(m, hf);
  // Every file tensor is one model parameter (the fixture is tied: no lm_head.weight).
  EXPECT_EQ(hf.size(), m.model->params().size());
  ASSERT_EQ(m.source.tensors.size(), hf.size());
  for (size_t i = 0; i < hf.size(); ++i) {
    EXPECT_EQ(m.source.tensors[i].first, hf[i].first);
    EXPECT_EQ(m.source.tensors[i].second, DType::f32);
  }
}

TEST(HfSmolVLM, LoadsBf16AndFp16Weights) {
  const Tensors hf = read_tensors(fs::path(kFixture) / "model.safetensors");
  for (const DType dt : {DType::bf16, DType::f16}) {
    const fs::path dir = copy_fixture(std::string("narrow_") + dtype_name(dt));
    Tensors narrow;
    for (const auto& [n, t] : hf) narrow.emplace_back(n, t.to(dt));
    save_safetensors((dir / "model.safetensors").string(), narrow, {{"format", "pt"}});
    const LoadedModel m = load_model_dir(dir.string());
    expect_model_equals(m, narrow);
    for (const auto& [n, t] : m.source.tensors) EXPECT_EQ(t, dt) << n;
    // Narrowing changed the values: the comparison above is not the fp32 one.
    EXPECT_NE(narrow[1].second.to_float_vector(), hf[1].second.to_float_vector());
  }
}

// DIR/model.safetensors split into two shards with an index, as transformers writes them.
void shard(const fs::path& dir) {
  const Tensors hf = read_tensors(dir / "model.safetensors");
  fs::remove(dir / "model.safetensors");
  const size_t half = hf.size() / 2;
  const Tensors a(hf.begin(), hf.begin() + static_cast<std::ptrdiff_t>(half));
  const Tensors b(hf.begin() + static_cast<std::ptrdiff_t>(half), hf.end());
  const std::string na = "model-00001-of-00002.safetensors",
                    nb = "model-00002-of-00002.safetensors";
  save_safetensors((dir / na).string(), a, {{"format", "pt"}});
  save_safetensors((dir / nb).string(), b, {{"format", "pt"}});
  json map = json::object();
  for (const auto& [n, t] : a) map[n] = na;
  for (const auto& [n, t] : b) map[n] = nb;
  write_json(dir / "model.safetensors.index.json",
             {{"metadata", {{"total_size", 0}}}, {"weight_map", map}});
}

TEST(HfSmolVLM, LoadsShardedWeights) {
  const fs::path dir = copy_fixture("sharded");
  shard(dir);
  const LoadedModel m = load_model_dir(dir.string());
  expect_model_equals(m, read_tensors(fs::path(kFixture) / "model.safetensors"));
  EXPECT_EQ(m.source.tensors.size(), m.model->params().size());

  // An index that names a tensor its shard lacks is an error naming it.
  json index = read_json(dir / "model.safetensors.index.json");
  index["weight_map"]["model.text_model.extra.weight"] = "model-00001-of-00002.safetensors";
  write_json(dir / "model.safetensors.index.json", index);
  EXPECT_THAT(load_error(dir), HasSubstr("model.text_model.extra.weight"));
}

TEST(HfSmolVLM, NamesMissingUnexpectedAndMisshapenTensors) {
  const fs::path dir = copy_fixture("strict");
  Tensors hf = read_tensors(dir / "model.safetensors");
  Tensors changed;
  for (auto& [n, t] : hf) {
    if (n == "model.vision_model.post_layernorm.bias") continue;  // missing
    if (n == "model.text_model.norm.weight") {
      changed.emplace_back(n, Tensor::zeros({t.shape()[0] + 1}));  // misshapen
      continue;
    }
    changed.emplace_back(n, t);
  }
  changed.emplace_back("model.text_model.layers.0.self_attn.q_norm.weight", Tensor::zeros({4}));
  changed.emplace_back("model.vision_model.head.probe", Tensor::zeros({1, 1, 16}));
  save_safetensors((dir / "model.safetensors").string(), changed);
  const std::string msg = load_error(dir);
  EXPECT_THAT(msg, HasSubstr("missing tensors"));
  EXPECT_THAT(msg, HasSubstr("vision_encoder.vision_model.post_layernorm.bias"));
  EXPECT_THAT(msg, HasSubstr("unexpected tensors"));
  EXPECT_THAT(msg, HasSubstr("model.text_model.layers.0.self_attn.q_norm.weight"));
  EXPECT_THAT(msg, HasSubstr("model.vision_model.head.probe"));
  EXPECT_THAT(msg, HasSubstr("model.text_model.norm.weight: file [17], model [16]"));
}

TEST(HfSmolVLM, UntiedModelLoadsItsLmHead) {
  const fs::path dir = copy_fixture("untied");
  json cfg = read_json(dir / "config.json");
  cfg["tie_word_embeddings"] = false;
  cfg["text_config"]["tie_word_embeddings"] = false;
  write_json(dir / "config.json", cfg);
  Tensors hf = read_tensors(dir / "model.safetensors");
  const int64_t V = cfg["text_config"]["vocab_size"], H = cfg["text_config"]["hidden_size"];
  hf.emplace_back("lm_head.weight", Tensor::full({V, H}, 0.25));
  save_safetensors((dir / "model.safetensors").string(), hf);
  const LoadedModel m = load_model_dir(dir.string());
  EXPECT_FALSE(m.config.llm.tie_word_embeddings);
  expect_model_equals(m, hf);

  // Without the tensor it is missing, by name.
  hf.pop_back();
  save_safetensors((dir / "model.safetensors").string(), hf);
  EXPECT_THAT(load_error(dir), HasSubstr("lm_head.weight"));
}

// transformers 4's writing: rope_theta at the top of text_config, tie_word_embeddings false at
// the top but true in text_config (then the weights decide), preprocessor_config.json and
// SmolVLM2's video_sampling in it.
TEST(HfSmolVLM, ReadsTransformers4Files) {
  const fs::path dir = copy_fixture("tf4");
  json cfg = read_json(dir / "config.json");
  cfg["model_type"] = "idefics3";
  cfg["tie_word_embeddings"] = false;
  json& tc = cfg["text_config"];
  tc.erase("rope_parameters");
  tc.erase("head_dim");  // hidden / heads
  tc["rope_theta"] = 273768.0;
  tc["rope_scaling"] = nullptr;
  write_json(dir / "config.json", cfg);
  const json proc = read_json(dir / "processor_config.json");
  json pre = proc["image_processor"];
  pre["video_sampling"] = {{"fps", 2}, {"max_frames", 16}, {"video_size", {{"longest_edge", 64}}}};
  pre["resample"] = 1;
  pre["size"] = {{"longest_edge", 96}};
  write_json(dir / "preprocessor_config.json", pre);
  write_json(dir / "processor_config.json", {{"image_seq_len", 4}});
  const LoadedModel m = load_model_dir(dir.string());
  EXPECT_EQ(m.config.llm.rope_theta, 273768.0);
  EXPECT_EQ(m.config.llm.head_dim, 4);
  EXPECT_TRUE(m.config.llm.tie_word_embeddings);  // no lm_head.weight in the file
  EXPECT_EQ(m.config.vision.longest_edge, 96);
  EXPECT_EQ(m.config.vision.video_fps, 2.0);
  EXPECT_EQ(m.config.vision.video_max_frames, 16);
  EXPECT_EQ(m.config.vision.video_longest_edge, 64);
  EXPECT_EQ(m.source.format, ModelSource::Format::hf_smolvlm);
}

TEST(HfSmolVLM, RefusesWhatItDoesNotImplement) {
  {
    const fs::path dir = copy_fixture("rope");
    json cfg = read_json(dir / "config.json");
    cfg["text_config"]["rope_parameters"] = {
        {"rope_type", "linear"}, {"factor", 2.0}, {"rope_theta", 1e4}};
    write_json(dir / "config.json", cfg);
    EXPECT_THAT(load_error(dir), HasSubstr("rope_type \"linear\" is not supported"));
  }
  {
    const fs::path dir = copy_fixture("tile");
    json proc = read_json(dir / "processor_config.json");
    proc["image_processor"]["max_image_size"]["longest_edge"] = 48;
    write_json(dir / "processor_config.json", proc);
    const std::string msg = load_error(dir);
    EXPECT_THAT(msg, HasSubstr("max_image_size.longest_edge 48"));
    EXPECT_THAT(msg, HasSubstr("vision_config.image_size 32"));
  }
  {
    const fs::path dir = copy_fixture("image_id");
    json cfg = read_json(dir / "config.json");
    cfg["image_token_id"] = 5;
    write_json(dir / "config.json", cfg);
    EXPECT_THAT(load_error(dir), HasSubstr("image_token_id is 5"));
  }
  {
    // Without a resize an image would be a partly padded tile: not computed, so refused.
    const fs::path dir = copy_fixture("no_resize");
    json proc = read_json(dir / "processor_config.json");
    proc["image_processor"]["do_resize"] = false;
    write_json(dir / "processor_config.json", proc);
    EXPECT_THAT(load_error(dir), HasSubstr("do_resize false is not supported"));
  }
}

// The set of (name, shape, dtype) of a safetensors file.
std::set<std::string> layout(const fs::path& file) {
  const SafeTensorsFile f = SafeTensorsFile::open(file.string());
  std::set<std::string> out;
  for (const std::string& n : f.names())
    out.insert(n + " " + shape_str(f.shape(n)) + " " + dtype_name(f.dtype(n)));
  return out;
}

std::set<std::string> file_names(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

// Saving a loaded (and changed, as training changes it) model writes the source's layout: the same
// tensors, names, shapes and dtypes, the source's other files unchanged, and loads back equal.
// The directory, TempDir()/out_name, is left for scripts/check_hf_smolvlm_dir.py (transformers
// loading it strictly).
void expect_saves_as_source(const fs::path& src, DType dtype, const std::string& out_name) {
  const LoadedModel m = load_model_dir(src.string());
  for (const NamedTensor& p : m.model->params()) {  // a "training step"
    Tensor t = p.tensor.detach();
    std::vector<float> v = t.to_float_vector();
    for (float& x : v) x = x * 0.5f + 0.125f;
    t.copy_(Tensor::from_vector(v, t.shape()));
  }
  const fs::path out = fs::path(::testing::TempDir()) / out_name;
  fs::remove_all(out);
  save_model_dir(*m.model, m.source, out.string());

  std::set<std::string> source_names;
  for (const auto& [n, dt] : m.source.tensors) source_names.insert(n);
  const std::set<std::string> saved = layout(out / "model.safetensors");
  std::set<std::string> names;
  for (const std::string& s : saved) {
    names.insert(s.substr(0, s.find(' ')));
    EXPECT_THAT(s, ::testing::EndsWith(std::string(" ") + dtype_name(dtype)));
  }
  EXPECT_EQ(names, source_names);
  // Shapes: the fp32 fixture's, whatever the dtype.
  std::set<std::string> fixture_shapes, saved_shapes;
  for (const std::string& s : layout(kFixture + std::string("/model.safetensors")))
    fixture_shapes.insert(s.substr(0, s.rfind(' ')));
  for (const std::string& s : saved) saved_shapes.insert(s.substr(0, s.rfind(' ')));
  EXPECT_EQ(saved_shapes, fixture_shapes);

  // Every non-weight file of the source, byte for byte; no weights but model.safetensors.
  std::set<std::string> expected_files{"model.safetensors"};
  for (const std::string& n : file_names(src)) {
    if (n.find(".safetensors") != std::string::npos) continue;
    expected_files.insert(n);
    EXPECT_EQ(read_bytes(out / n), read_bytes(src / n)) << n;
  }
  EXPECT_EQ(file_names(out), expected_files);

  const LoadedModel back = load_model_dir(out.string());
  EXPECT_EQ(back.source.format, ModelSource::Format::hf_smolvlm);
  const auto ps = m.model->params(), bs = back.model->params();
  ASSERT_EQ(ps.size(), bs.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    EXPECT_EQ(ps[i].name, bs[i].name);
    // Equal after rounding to the saved dtype.
    EXPECT_EQ(ps[i].tensor.detach().to(dtype).to_float_vector(),
              bs[i].tensor.detach().to_float_vector())
        << ps[i].name;
  }
}

TEST(HfSmolVLM, SavesTheSourceLayout) {
  expect_saves_as_source(kFixture, DType::f32, "minivlm_hf_saved_f32");
}

TEST(HfSmolVLM, SavesABf16SourceInBf16) {
  const fs::path dir = copy_fixture("save_bf16");
  Tensors narrow;
  for (const auto& [n, t] : read_tensors(dir / "model.safetensors"))
    narrow.emplace_back(n, t.to(DType::bf16));
  save_safetensors((dir / "model.safetensors").string(), narrow, {{"format", "pt"}});
  expect_saves_as_source(dir, DType::bf16, "minivlm_hf_saved_bf16");
}

TEST(HfSmolVLM, SavesAShardedSourceAsOneFile) {
  const fs::path dir = copy_fixture("save_sharded");
  shard(dir);
  expect_saves_as_source(dir, DType::f32, "minivlm_hf_saved_sharded");
}

TEST(HfSmolVLM, SaveKeepsATiedLmHeadTheSourceHas) {
  const fs::path dir = copy_fixture("save_lm_head");
  Tensors hf = read_tensors(dir / "model.safetensors");
  Tensor embed;
  for (const auto& [n, t] : hf)
    if (n == "model.text_model.embed_tokens.weight") embed = t;
  hf.emplace_back("lm_head.weight", embed);
  save_safetensors((dir / "model.safetensors").string(), hf);
  const LoadedModel m = load_model_dir(dir.string());
  EXPECT_TRUE(m.config.llm.tie_word_embeddings);
  const fs::path out = fs::path(::testing::TempDir()) / "minivlm_hf_saved_lm_head";
  fs::remove_all(out);
  save_model_dir(*m.model, m.source, out.string());
  const SafeTensorsFile f = SafeTensorsFile::open((out / "model.safetensors").string());
  ASSERT_TRUE(f.contains("lm_head.weight"));
  EXPECT_EQ(f.get("lm_head.weight").to_float_vector(), embed.to_float_vector());
}

// configs/smolvlm-256m.json: SmolVLM-256M's layout, 64 image tokens per 512² tile, a
// 12288 → 576 projection; its config.json is written back unchanged.
TEST(HfSmolVLM, The256mPresetHasTheReleasedLayout) {
  const std::string path = MINIVLM_SOURCE_DIR "/configs/smolvlm-256m.json";
  const ModelConfig c = ModelConfig::from_file(path);
  EXPECT_EQ(c.vision.type, "smolvlm");
  EXPECT_EQ(c.tokens_per_image(), 64);
  EXPECT_EQ(c.projector_in(), 12288);
  EXPECT_EQ(c.llm.hidden_size, 576);
  EXPECT_EQ(c.llm.head_dim * c.llm.num_attention_heads, 576);
  EXPECT_EQ(c.to_json(), read_json(path));
}

}  // namespace
}  // namespace minivlm
