// The model (SPEC §1) against goldens from the independent PyTorch reference
// (scripts/reference/make_model_goldens.py): logits, loss, vision features, projected image rows
// and the gradient of every trainable tensor, in f32.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <tuple>
#include <limits>
#include <nlohmann/json.hpp>

#include "io/model_io.h"
#include "io/safetensors.h"
#include "ops/ops.h"

namespace minivlm {
namespace {

const std::string kGoldens = std::string(MINIVLM_SOURCE_DIR) + "/tests/goldens/model/";

// max|a − b| / max|b|: error relative to the tensor's scale.
double scaled_error(const Tensor& ours, const Tensor& golden) {
  EXPECT_EQ(ours.shape(), golden.shape());
  const auto a = ours.to_double_vector(), b = golden.to_double_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num = std::max(num, std::abs(a[i] - b[i]));
    den = std::max(den, std::abs(b[i]));
  }
  return den > 0 ? num / den : num;
}

bool is_weight(const std::string& n) {
  return n.rfind("input.", 0) != 0 && n.rfind("output.", 0) != 0 && n.rfind("grad.", 0) != 0;
}

// The golden case, and whether the forward keeps every logit (Logits::all) or, as training does,
// runs the LM head and the loss on the supervised rows only (Logits::none): the loss and every
// gradient must match the reference either way.
class ModelParity : public ::testing::TestWithParam<std::tuple<std::string, MiniMindVLM::Logits>> {
};

TEST_P(ModelParity, LogitsLossAndGradientsMatchTheReference) {
  const auto [c, logits] = GetParam();
  std::ifstream jf(kGoldens + c + ".json");
  ASSERT_TRUE(jf.good()) << "missing golden " << c;
  const nlohmann::json meta = nlohmann::json::parse(jf);
  const ModelConfig config = ModelConfig::from_json(meta.at("config"), c);
  ASSERT_EQ(config.tokens_per_image(), meta.at("tokens_per_image").get<int64_t>());
  MiniMindVLM model(config, meta.at("image_token_id").get<int64_t>());
  const std::string path = kGoldens + c + ".safetensors";
  ImportRule weights_only{[](const std::string& n) { return is_weight(n) ? n : std::string(); },
                          [](const std::string&) { return true; }, "golden weights"};
  import_weights(model, path, weights_only);
  const SafeTensorsFile g = SafeTensorsFile::open(path);

  for (const NamedTensor& p : model.params())
    if (p.name.rfind("vision_encoder.", 0) != 0) NamedTensor(p).tensor.set_requires_grad(true);

  VlmBatch batch;
  batch.ids = g.get("input.ids");
  batch.label_mask = g.get("input.label_mask");
  batch.images_per_sample = g.get("input.images_per_sample").to_int_vector();
  const Tensor pixels = g.get("input.pixel_values");
  if (pixels.size(0) > 0) batch.pixels = pixels.contiguous();

  if (batch.pixels.defined()) {
    EXPECT_LT(scaled_error(model.vision->features(batch.pixels), g.get("output.vision_features")),
              1e-4);
    const int64_t n = pixels.size(0), N = config.tokens_per_image();
    EXPECT_LT(scaled_error(model.image_rows(batch.pixels).reshape({n, N, -1}),
                           g.get("output.image_embeds")),
              1e-4);
  }
  const VlmOutput out = model.forward(batch, 0.0, logits);
  if (logits == MiniMindVLM::Logits::all)
    EXPECT_LT(scaled_error(out.logits, g.get("output.logits")), 1e-4) << c;
  else
    EXPECT_FALSE(out.logits.defined());
  const double golden_loss = g.get("output.loss").item();
  EXPECT_LT(std::abs(out.loss.item() - golden_loss) / std::abs(golden_loss), 1e-4) << c;

  out.loss.backward();
  int checked = 0;
  for (const NamedTensor& p : model.params()) {
    const std::string gname = "grad." + p.name;
    if (!g.contains(gname)) {
      EXPECT_FALSE(p.tensor.grad().defined()) << p.name << " is frozen in the reference";
      continue;
    }
    const Tensor golden = g.get(gname);
    const Tensor ours = p.tensor.grad().defined() ? p.tensor.grad() : Tensor::zeros(golden.shape());
    EXPECT_LT(scaled_error(ours, golden), 1e-3) << c << ": gradient of " << p.name;
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

INSTANTIATE_TEST_SUITE_P(
    Goldens, ModelParity,
    ::testing::Combine(::testing::Values("gqa_r2_tied", "mqa_qknorm_r1_bias_two_images",
                                         "mha_qknorm_r4_untied_mixed", "text_only_batch"),
                       ::testing::Values(MiniMindVLM::Logits::all, MiniMindVLM::Logits::none)),
    [](const auto& info) {
      return std::get<0>(info.param) + (std::get<1>(info.param) == MiniMindVLM::Logits::all
                                            ? "_all_logits"
                                            : "_supervised_rows");
    });

TEST(ModelLoading, StrictLoadNamesEveryMismatch) {
  const std::string c = "gqa_r2_tied";
  std::ifstream jf(kGoldens + c + ".json");
  const nlohmann::json meta = nlohmann::json::parse(jf);
  const ModelConfig config = ModelConfig::from_json(meta.at("config"), c);
  MiniMindVLM model(config, 12);
  model.init(3);
  const std::string dir = ::testing::TempDir() + "strict_load";
  const std::string path = dir + ".safetensors";
  save_weights(model, path);
  MiniMindVLM other(config, 12);
  load_weights(other, path);  // a clean round trip
  for (size_t i = 0; i < model.params().size(); ++i)
    EXPECT_EQ(model.params()[i].tensor.to_float_vector(),
              other.params()[i].tensor.to_float_vector());

  // Rename one tensor: both the missing and the unexpected name are reported.
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const NamedTensor& p : model.params())
    tensors.emplace_back(p.name == "model.layers.1.mlp.up_proj.weight"
                             ? "model.layers.1.mlp.upp_proj.weight"
                             : p.name,
                         p.tensor);
  save_safetensors(path, tensors);
  try {
    load_weights(other, path);
    FAIL() << "a renamed tensor must not load";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("missing tensors:\n  model.layers.1.mlp.up_proj.weight"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("unexpected tensors:\n  model.layers.1.mlp.upp_proj.weight"),
              std::string::npos)
        << msg;
  }
  // A wrong shape names the tensor and both shapes.
  tensors.clear();
  for (const NamedTensor& p : model.params())
    tensors.emplace_back(p.name, p.name == "model.norm.weight" ? Tensor::ones({31}) : p.tensor);
  save_safetensors(path, tensors);
  try {
    load_weights(other, path);
    FAIL() << "a misshapen tensor must not load";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.norm.weight: file [31], model [32]"),
              std::string::npos)
        << e.what();
  }  // Non-finite values are named with their count, in a warning.
  tensors.clear();
  for (const NamedTensor& p : model.params()) {
    Tensor t = p.tensor.clone();
    if (p.name == "model.layers.0.self_attn.q_proj.weight") {
      std::vector<float> v = t.to_float_vector();
      v[3] = std::numeric_limits<float>::quiet_NaN();
      v[7] = std::numeric_limits<float>::infinity();
      t = Tensor::from_vector(v, t.shape());
    }
    tensors.emplace_back(p.name, t);
  }
  save_safetensors(path, tensors);
  ::testing::internal::CaptureStderr();
  load_weights(other, path);
  const std::string warning = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(
      warning.find("holds non-finite weights:\n  model.layers.0.self_attn.q_proj.weight: 2 of"),
      std::string::npos)
      << warning;
}

TEST(ModelLoading, ImportersMapForeignNames) {
  std::ifstream jf(kGoldens + "gqa_r2_tied.json");
  const ModelConfig config =
      ModelConfig::from_json(nlohmann::json::parse(jf).at("config"), "gqa_r2_tied");
  MiniMindVLM source(config, 12), target(config, 12);
  source.init(5);
  target.init(6);
  // A Hugging Face CLIP checkpoint: vision_model.* plus the text side, which is ignored.
  std::vector<std::pair<std::string, Tensor>> clip, llm;
  for (const NamedTensor& p : source.params()) {
    if (p.name.rfind("vision_encoder.", 0) == 0)
      clip.emplace_back(p.name.substr(15), p.tensor);
    else if (p.name.rfind("model.", 0) == 0)
      llm.emplace_back(p.name, p.tensor);
  }
  clip.emplace_back("vision_model.embeddings.position_ids", Tensor::arange(17));
  clip.emplace_back("text_model.embeddings.token_embedding.weight", Tensor::zeros({5, 4}));
  clip.emplace_back("logit_scale", Tensor::ones({}));
  clip.emplace_back("visual_projection.weight", Tensor::zeros({4, 24}));
  llm.emplace_back("lm_head.weight", source.llm.embed_tokens.detach().clone());  // the tied copy
  llm.emplace_back("vision_proj.proj.weight", Tensor::zeros({1, 1}));            // ignored
  const std::string dir = ::testing::TempDir();
  save_safetensors(dir + "hf_clip.safetensors", clip);
  save_safetensors(dir + "minimind_llm.safetensors", llm);
  import_hf_vision(target, dir + "hf_clip.safetensors");
  import_minimind_llm(target, dir + "minimind_llm.safetensors");
  const ParamList from = source.params(), to = target.params();
  for (size_t i = 0; i < from.size(); ++i) {
    const bool imported = from[i].name.rfind("vision_proj.", 0) != 0;
    EXPECT_EQ(from[i].tensor.to_float_vector() == to[i].tensor.to_float_vector(), imported)
        << from[i].name;
  }
  // A vision tensor missing from the CLIP file is named.
  clip.erase(clip.begin());
  save_safetensors(dir + "hf_clip.safetensors", clip);
  try {
    import_hf_vision(target, dir + "hf_clip.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "missing tensors:\n  vision_encoder.vision_model.embeddings.class_embedding"),
              std::string::npos)
        << e.what();
  }
}

TEST(ModelConfig, DefaultsUnknownKeysAndDerivedSizes) {
  nlohmann::json j = {{"llm", {{"hidden_size", 768}, {"num_attention_heads", 8}}}};
  const ModelConfig c = ModelConfig::from_json(j, "test");
  EXPECT_EQ(c.llm.head_dim, 96);
  EXPECT_EQ(c.llm.intermediate_size, 2048);  // 64·ceil(768·8/3 / 64)
  EXPECT_EQ(c.tokens_per_image(), 49);
  j["llm"]["hidden_sizee"] = 3;
  try {
    ModelConfig::from_json(j, "test");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown key 'hidden_sizee'"), std::string::npos)
        << e.what();
  }
  nlohmann::json bad = {{"vision", {{"image_size", 224}, {"patch_size", 16}}},
                        {"projector", {{"pixel_shuffle", 4}}}};
  EXPECT_THROW(ModelConfig::from_json(bad, "test"), Error);  // grid 14 % 4 != 0
}

}  // namespace
}  // namespace minivlm
