// Hugging Face SmolVLM directories end to end: tiny random SmolVLMs saved by transformers itself
// (tests/goldens/smolvlm, scripts/reference/make_smolvlm_goldens.py: tied / fp32 / image splitting,
// untied / bf16 / no splitting) go through `minivlm forward` as they are, and its input ids must
// equal SmolVLMProcessor's and its logits SmolVLMForConditionalGeneration's (1e-4 relative) on chat
// and raw prompts with a photo, a wide, a tall and a small image, two images, none, and a video.
// Then train_sft fine-tunes one and writes final/ in the same Hugging Face layout (transformers'
// strict loading of it is scripts/reference/check_smolvlm.py --final), which forward and infer
// run on.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "cli_util.h"
#include "io/safetensors.h"

namespace minivlm::testing {
namespace {

const std::string kGoldens = kSource + "/tests/goldens/smolvlm/";

std::string forward_command(const std::string& model, const nlohmann::json& p,
                            const std::string& out) {
  std::string cmd = kBin + "/minivlm forward --model " + model + " --out " + out;
  cmd += (p["kind"] == "chat" ? " --chat '" : " --text '") + p["text"].get<std::string>() + "'";
  for (const auto& img : p["images"]) cmd += " --image " + kSource + "/" + img.get<std::string>();
  for (const auto& v : p["videos"]) cmd += " --video " + kSource + "/" + v.get<std::string>();
  return cmd;
}

class SmolVlmForward : public ::testing::TestWithParam<std::string> {};

TEST_P(SmolVlmForward, IdsAndLogitsEqualTransformers) {
  const std::string model = kGoldens + GetParam();
  const SafeTensorsFile want = SafeTensorsFile::open(model + "/expected.safetensors");
  const std::vector<int64_t> cols = want.get("logit_columns").to_int_vector();
  const nlohmann::json prompts = nlohmann::json::parse(read_file(kGoldens + "prompts.json"));
  ASSERT_EQ(prompts.size(), 7u);
  const std::string dir = fresh_dir("smolvlm_" + GetParam());
  for (const nlohmann::json& p : prompts) {
    const std::string name = p["name"], out = dir + "/" + name + ".safetensors";
    const RunResult r = run(forward_command(model, p, out));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const SafeTensorsFile got = SafeTensorsFile::open(out);
    const std::vector<int64_t> ids = got.get("input_ids").to_int_vector();
    ASSERT_EQ(ids, want.get(name + ".input_ids").to_int_vector()) << GetParam() << " " << name;
    const Tensor logits = got.get("logits");
    const int64_t T = static_cast<int64_t>(ids.size()), V = logits.size(1);
    const std::vector<double> all = logits.to_double_vector();
    std::vector<double> sampled, last(all.end() - V, all.end());
    for (int64_t t = 0; t < T; ++t)
      for (int64_t col : cols) sampled.push_back(all[static_cast<size_t>(t * V + col)]);
    const double e_cols = max_rel(sampled, want.get(name + ".logits_cols").to_double_vector());
    const double e_last = max_rel(last, want.get(name + ".logits_last").to_double_vector());
    EXPECT_LE(e_cols, 1e-4) << GetParam() << " " << name;
    EXPECT_LE(e_last, 1e-4) << GetParam() << " " << name;
    std::printf("%s %s: %lld tokens, logits %.2e (columns) %.2e (last row)\n", GetParam().c_str(),
                name.c_str(), static_cast<long long>(T), e_cols, e_last);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, SmolVlmForward, ::testing::Values("tied_split", "untied_nosplit"));

// train_sft on a SmolVLM directory: final/ keeps the Hugging Face layout — the source's tensor
// names, shapes and dtypes, its config and processor and tokenizer files — with trained weights,
// and forward, eval and infer run on it. A checkpoint is a Hugging Face directory too (fp32
// weights), and resuming from it reproduces the uninterrupted run bit for bit.
TEST(SmolVlmTrain, SftWritesHuggingFaceDirectoriesAndResumesExactly) {
  const std::string source = kGoldens + "untied_nosplit";
  const std::string opts = "--max-steps 4 --train all --batch-size 2 --max-seq-len 512 ";
  const std::string run_dir = fresh_dir("smolvlm_sft");
  RunResult r =
      run(train_command("train_sft", source, "sft.jsonl", run_dir, opts + "--save-every 2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(train_lines(run_dir).size(), 4u);
  const std::string final_dir = run_dir + "/final";
  const SafeTensorsFile src = SafeTensorsFile::open(source + "/model.safetensors");
  const SafeTensorsFile out = SafeTensorsFile::open(final_dir + "/model.safetensors");
  EXPECT_EQ(std::set<std::string>(out.names().begin(), out.names().end()),
            std::set<std::string>(src.names().begin(), src.names().end()));
  int changed = 0;
  for (const std::string& n : src.names()) {
    ASSERT_TRUE(out.contains(n)) << n;
    EXPECT_EQ(out.shape(n), src.shape(n)) << n;
    EXPECT_EQ(out.dtype(n), src.dtype(n)) << n;
    const bool same = out.get(n).to_float_vector() == src.get(n).to_float_vector();
    if (n.rfind("model.vision_model.", 0) == 0) {
      EXPECT_TRUE(same) << n << ": the tower is frozen";
    } else {
      changed += !same;
    }
  }
  EXPECT_GT(changed, 0);
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json",
                        "processor_config.json", "chat_template.jinja"})
    EXPECT_EQ(read_file(final_dir + "/" + f), read_file(source + "/" + f)) << f;
  const nlohmann::json prompts = nlohmann::json::parse(read_file(kGoldens + "prompts.json"));
  const SafeTensorsFile want = SafeTensorsFile::open(source + "/expected.safetensors");
  const std::string checkpoint = run_dir + "/checkpoints/step_00000002";
  for (const std::string& dir : {final_dir, checkpoint}) {
    r = run(forward_command(dir, prompts[0], run_dir + "/f.safetensors"));
    ASSERT_EQ(r.exit_code, 0) << dir << "\n" << r.output;
    EXPECT_EQ(SafeTensorsFile::open(run_dir + "/f.safetensors").get("input_ids").to_int_vector(),
              want.get("chat_photo.input_ids").to_int_vector())
        << dir;
  }
  const SafeTensorsFile ck = SafeTensorsFile::open(checkpoint + "/model.safetensors");
  for (const std::string& n : src.names()) EXPECT_EQ(ck.dtype(n), DType::f32) << n;
  r = run(kBin + "/eval --model " + final_dir + " --data " + workspace().data +
          "/eval.jsonl --images " + workspace().images + " --out " + run_dir +
          "/eval --max-seq-len 512");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto metrics = nlohmann::json::parse(read_file(run_dir + "/eval/metrics.json"));
  EXPECT_GT(metrics["samples"].get<int64_t>(), 0) << metrics.dump();
  EXPECT_EQ(metrics["skipped"].get<int64_t>(), 0) << metrics.dump();
  r = run(kBin + "/infer --model " + final_dir + " --image " + kSource +
          "/tests/fixtures/images/image-04-yellow-car.jpg --prompt 'What is this?' "
          "--max-new-tokens 6 --greedy");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  const std::string resumed = fresh_dir("smolvlm_resumed");
  r = run(
      train_command("train_sft", source, "sft.jsonl", resumed, opts + "--resume " + checkpoint));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(read_file(resumed + "/final/model.safetensors") ==
              read_file(final_dir + "/model.safetensors"))
      << "final weights differ";
  const auto la = losses(run_dir), lr = losses(resumed);
  ASSERT_EQ(lr.size(), 2u);
  EXPECT_EQ(la[2], lr[0]);
  EXPECT_EQ(la[3], lr[1]);
}

}  // namespace
}  // namespace minivlm::testing
