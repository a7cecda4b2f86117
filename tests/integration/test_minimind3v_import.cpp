// The released minimind-3v format end to end: tiny checkpoints written the way MiniMind-V writes
// its releases (tests/goldens/minimind3v: an fp16 state dict without the vision tower, a Hugging
// Face SigLIP folder, MiniMind-V's config.json; dense, MoE top-1 and top-2; bilinear and bicubic
// preprocessing) are converted by scripts/convert_minimind_v.py, and `minivlm forward` must give
// the input ids and logits of the reference (scripts/reference/minimind3v_ref.py, itself held to
// MiniMind-V's own model code) on chat prompts with one, two and no images and on raw prompts.
// Then train_sft fine-tunes the imported dense and MoE models, and eval and infer run on them.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>

#include "cli_util.h"
#include "io/safetensors.h"

namespace minivlm::testing {
namespace {

const std::string kGoldens = kSource + "/tests/goldens/minimind3v/";

struct Case {
  std::string name, siglip;
};
const Case kCases[] = {
    {"dense", "siglip_bilinear"}, {"moe_top1", "siglip_bicubic"}, {"moe_top2", "siglip_bilinear"}};

// The converted model directory of a case, made once per test process.
std::string converted(const Case& c) {
  static std::map<std::string, std::string> dirs;
  auto it = dirs.find(c.name);
  if (it != dirs.end()) return it->second;
  const std::string out = fresh_dir("import_" + c.name) + "/model";
  const RunResult r = run("python3 " + kSource + "/scripts/convert_minimind_v.py --weights " +
                          kGoldens + c.name + "/W.pth --vision " + kGoldens + c.siglip +
                          " --config " + kGoldens + c.name + "/config.json --out " + out);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return dirs[c.name] = out;
}

class Minimind3vImport : public ::testing::TestWithParam<Case> {};

TEST_P(Minimind3vImport, ForwardGivesTheReferenceIdsAndLogits) {
  const Case& c = GetParam();
  const std::string model = converted(c);
  const nlohmann::json config = nlohmann::json::parse(read_file(model + "/config.json"));
  EXPECT_EQ(config["vision"]["type"], "siglip");
  EXPECT_EQ(config["projector"]["type"], "mlp");
  EXPECT_EQ(config["llm"].value("use_moe", false), c.name != "dense");
  const SafeTensorsFile want = SafeTensorsFile::open(kGoldens + c.name + "/expected.safetensors");
  const std::vector<int64_t> cols = want.get("logit_columns").to_int_vector();
  const nlohmann::json prompts = nlohmann::json::parse(read_file(kGoldens + "prompts.json"));
  ASSERT_EQ(prompts.size(), 5u);
  const std::string dir = fresh_dir("forward_" + c.name);
  for (const nlohmann::json& p : prompts) {
    const std::string name = p["name"];
    std::string text = p["text"];
    std::string cmd =
        kBin + "/minivlm forward --model " + model + " --out " + dir + "/" + name + ".safetensors";
    if (p["kind"] == "chat") {
      // --chat puts "<image>\n" before the text once per image, as MiniMind-V's data does.
      const std::string marker = "<image>\n";
      while (text.rfind(marker, 0) == 0) text = text.substr(marker.size());
      cmd += " --chat '" + text + "'";
    } else {
      cmd += " --text '" + text + "'";
    }
    for (const auto& img : p["images"]) cmd += " --image " + kSource + "/" + img.get<std::string>();
    const RunResult r = run(cmd);
    ASSERT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;
    const SafeTensorsFile got = SafeTensorsFile::open(dir + "/" + name + ".safetensors");
    const std::vector<int64_t> ids = got.get("input_ids").to_int_vector();
    EXPECT_EQ(ids, want.get(name + ".input_ids").to_int_vector()) << c.name << " " << name;
    const Tensor logits = got.get("logits");
    const int64_t T = static_cast<int64_t>(ids.size()), V = 6400;
    ASSERT_EQ(logits.shape(), (Shape{T, V}));
    const std::vector<double> all = logits.to_double_vector();
    std::vector<double> sampled, last(all.end() - V, all.end());
    for (int64_t t = 0; t < T; ++t)
      for (int64_t col : cols) sampled.push_back(all[static_cast<size_t>(t * V + col)]);
    const double e_cols = max_rel(sampled, want.get(name + ".logits_cols").to_double_vector());
    const double e_last = max_rel(last, want.get(name + ".logits_last").to_double_vector());
    EXPECT_LE(e_cols, 1e-4) << c.name << " " << name;
    EXPECT_LE(e_last, 1e-4) << c.name << " " << name;
    std::printf("%s %s: %lld tokens, logits %.2e (columns) %.2e (last row)\n", c.name.c_str(),
                name.c_str(), static_cast<long long>(T), e_cols, e_last);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, Minimind3vImport, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name; });

// Fine-tuning the imported models: the loss falls, a MoE model logs its router loss, and the
// fine-tuned directory evaluates and chats.
TEST(Minimind3vImport, TrainSftEvalAndInferRunOnTheImportedModels) {
  const Workspace& w = workspace();
  for (const Case& c : {kCases[0], kCases[2]}) {
    const std::string run_dir = fresh_dir("sft_" + c.name);
    RunResult r = run(train_command("train_sft", converted(c), "sft.jsonl", run_dir,
                                    "--max-steps 4 --train all"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::vector<nlohmann::json> lines = train_lines(run_dir);
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_LT(lines.back()["loss"].get<double>(), lines.front()["loss"].get<double>()) << c.name;
    if (c.name == "dense") {
      EXPECT_FALSE(lines[0].contains("aux_loss"));
    } else {
      ASSERT_TRUE(lines[0].contains("aux_loss")) << lines[0].dump();
      EXPECT_GT(lines[0]["aux_loss"].get<double>(), 0.0);
    }
    r = run(kBin + "/eval --model " + run_dir + "/final --data " + w.data +
            "/eval.jsonl --images " + w.images + " --out " + run_dir + "/eval");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto metrics = nlohmann::json::parse(read_file(run_dir + "/eval/metrics.json"));
    EXPECT_GT(metrics["samples"].get<int64_t>(), 0);
    r = run(kBin + "/infer --model " + run_dir + "/final --image " + kSource +
            "/tests/fixtures/images/image-04-yellow-car.jpg --prompt 'What is this?' "
            "--max-new-tokens 8 --greedy");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
}

// init-model --vision-from takes a Hugging Face SigLIP folder: its tensors become the tower (the
// pooling head left out), and a folder that disagrees with the config is refused, naming how.
TEST(Minimind3vImport, InitModelTakesASiglipFolder) {
  const std::string dir = fresh_dir("init_siglip");
  nlohmann::json config =
      nlohmann::json::parse(read_file(kSource + "/tests/fixtures/test-model-3v.json"));
  config["vision"].update({{"image_size", 64},
                           {"patch_size", 16},
                           {"hidden_size", 32},
                           {"num_hidden_layers", 2},
                           {"num_attention_heads", 2},
                           {"intermediate_size", 64}});
  std::ofstream(dir + "/config.json") << config.dump(2);
  const std::string folder = kGoldens + "siglip_bilinear";
  RunResult r = run(kBin + "/minivlm init-model --config " + dir + "/config.json --tokenizer " +
                    kTokenizer + " --out " + dir + "/model --vision-from " + folder);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const SafeTensorsFile hf = SafeTensorsFile::open(folder + "/model.safetensors");
  const SafeTensorsFile ours = SafeTensorsFile::open(dir + "/model/model.safetensors");
  int copied = 0;
  for (const std::string& name : hf.names()) {
    const std::string mine = "vision_encoder." + name;
    if (name.rfind("vision_model.head.", 0) == 0 ||
        name.find("position_ids") != std::string::npos) {
      EXPECT_FALSE(ours.contains(mine)) << mine;
      continue;
    }
    ASSERT_TRUE(ours.contains(mine)) << mine;
    EXPECT_EQ(ours.get(mine).to_float_vector(), hf.get(name).to_float_vector()) << mine;
    ++copied;
  }
  EXPECT_EQ(copied, 3 + 2 * 16 + 2);  // embeddings, 16 per layer, post_layernorm
  config["vision"]["resample"] = "bicubic";
  config["vision"]["num_hidden_layers"] = 3;
  std::ofstream(dir + "/bad.json") << config.dump(2);
  r = run(kBin + "/minivlm init-model --config " + dir + "/bad.json --tokenizer " + kTokenizer +
          " --out " + dir + "/bad --vision-from " + folder);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("num_hidden_layers: 2 in the folder, 3 in vision"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("preprocessor resample: 2 (bilinear) in the folder, bicubic in vision"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace minivlm::testing
