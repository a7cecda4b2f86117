// `minivlm forward` on small models from `minivlm init-model --config configs/tiny.json`: its ids
// against the chat rendering and the tokenizer, its logits against an in-process forward pass of
// the same batch; the chat template a model directory gets from its tokenizer; the errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "autograd/node.h"
#include "cli_util.h"
#include "data/image.h"
#include "data/processor.h"
#include "io/model_io.h"
#include "io/safetensors.h"
#include "text/chat.h"
#include "text/tokenizer.h"

namespace minivlm {
namespace {

using testing::chatml_tokenizer;
using testing::fresh_dir;
using ::testing::HasSubstr;
using testing::kBin;
using testing::kSource;
using testing::kTokenizer;
using testing::read_file;
using testing::run;

const std::string kImage = kSource + "/tests/fixtures/images/image-04-yellow-car.jpg";
const std::string kImage2 = kSource + "/tests/fixtures/images/image-01-golden-dog-balloons.jpg";

// Two untrained tiny CLIP models, made once: one with data/tokenizer's tokenizer_config.json
// (MiniMind-3's chat template), one from the tokenizer alone (ChatML).
struct Models {
  std::string dir, minimind3, chatml;
};

const Models& models() {
  static const Models m = [] {
    Models k;
    k.dir = fresh_dir("forward");
    k.minimind3 = k.dir + "/minimind3";
    k.chatml = k.dir + "/chatml";
    for (const auto& [tok, out] :
         {std::pair{kTokenizer, k.minimind3}, {chatml_tokenizer(), k.chatml}}) {
      const auto r = run(kBin + "/minivlm init-model --config " + kSource +
                         "/configs/tiny.json --tokenizer " + tok + " --out " + out + " --seed 11");
      EXPECT_EQ(r.exit_code, 0) << r.output;
    }
    return k;
  }();
  return m;
}

std::vector<int64_t> ids_of(const SafeTensorsFile& f) { return f.get("input_ids").to_int_vector(); }

// `forward` in a shell: the quoted words as given.
testing::RunResult forward(const std::string& model, const std::string& args,
                           const std::string& out) {
  return run(kBin + "/minivlm forward --model " + model + " " + args + " --out " + out);
}

TEST(Forward, InitModelKeepsTheTokenizersChatTemplate) {
  const Models& m = models();
  EXPECT_EQ(read_file(m.minimind3 + "/tokenizer_config.json"),
            read_file(kSource + "/data/tokenizer/tokenizer_config.json"));
  EXPECT_FALSE(std::filesystem::exists(m.chatml + "/tokenizer_config.json"));
  EXPECT_EQ(load_model_dir(m.minimind3).tokenizer->chat_template(), ChatTemplate::minimind3);
  EXPECT_EQ(load_model_dir(m.chatml).tokenizer->chat_template(), ChatTemplate::chatml);
}

// --text with one image: one run of N image tokens; logits equal an in-process forward pass.
TEST(Forward, TextIdsAndLogitsMatchAnInProcessForward) {
  const Models& m = models();
  const std::string out = m.dir + "/text.safetensors";
  const std::string raw = "<|im_start|>user\n<image>\nWhat is this?<|im_end|>\n";
  const auto r = forward(m.minimind3, "--text '" + raw + "' --image " + kImage, out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("1 images"));

  const LoadedModel lm = load_model_dir(m.minimind3);
  const auto processor = ImageProcessor::for_model(lm.config);
  ProcessedImages images;
  images.add(processor->process(load_rgb_image(kImage)));
  const std::vector<int32_t> ids = lm.tokenizer->encode(expand_images(raw, images.prompts));
  const int64_t T = static_cast<int64_t>(ids.size());

  const SafeTensorsFile f = SafeTensorsFile::open(out);
  EXPECT_EQ(f.dtype("input_ids"), DType::i64);
  EXPECT_EQ(f.dtype("logits"), DType::f32);
  const std::vector<int64_t> got = ids_of(f);
  EXPECT_EQ(got, std::vector<int64_t>(ids.begin(), ids.end()));
  // One run of N image tokens.
  const int64_t image_id = lm.model->image_token_id();
  const int64_t n = images.prompts[0].image_tokens;
  EXPECT_EQ(n, 16);  // (64 / 8 / 2)²
  const auto first = std::find(got.begin(), got.end(), image_id);
  ASSERT_NE(first, got.end());
  EXPECT_TRUE(std::all_of(first, first + n, [&](int64_t t) { return t == image_id; }));
  EXPECT_EQ(std::count(got.begin(), got.end(), image_id), n);

  VlmBatch batch;
  batch.ids = Tensor::from_vector(std::vector<int64_t>(ids.begin(), ids.end()), {1, T});
  batch.label_mask = Tensor::zeros({1, T}, DType::i64);
  batch.images_per_sample = {1};
  batch.tiles_per_image = images.tiles_per_image;
  const int64_t S = processor->tile_size();
  batch.pixels = Tensor::from_vector(images.pixels, {images.tiles(), 3, S, S});
  NoGradGuard no_grad;
  const std::vector<float> want =
      lm.model->forward(batch).logits.reshape({T * lm.config.llm.vocab_size}).to_float_vector();
  const Tensor logits = f.get("logits");
  ASSERT_EQ(logits.shape(), (Shape{T, lm.config.llm.vocab_size}));
  const std::vector<float> have = logits.reshape({T * lm.config.llm.vocab_size}).to_float_vector();
  float scale = 0, worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::abs(want[i]));
    worst = std::max(worst, std::abs(want[i] - have[i]));
  }
  EXPECT_GT(scale, 0);
  EXPECT_LE(worst, 1e-5 * scale);
}

// --chat: one user turn, "<image>\n" per image then the text, in the model's chat template with
// its generation prompt.
TEST(Forward, ChatIdsAreTheRenderedChat) {
  const Models& m = models();
  for (const std::string& model : {m.minimind3, m.chatml}) {
    const std::string out = m.dir + "/chat.safetensors";
    const auto r =
        forward(model, "--chat 'Compare them.' --image " + kImage + " --image " + kImage2, out);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const LoadedModel lm = load_model_dir(model);
    const auto processor = ImageProcessor::for_model(lm.config);
    ProcessedImages images;
    for (const std::string& p : {kImage, kImage2})
      images.add(processor->process(load_rgb_image(p)));
    const std::vector<int32_t> want =
        encode_generation_prompt(*lm.tokenizer, {{"user", "<image>\n<image>\nCompare them."}},
                                 images.prompts, processor->image_token());
    const std::vector<int64_t> got = ids_of(SafeTensorsFile::open(out));
    EXPECT_EQ(got, std::vector<int64_t>(want.begin(), want.end())) << model;
    EXPECT_EQ(std::count(got.begin(), got.end(), lm.model->image_token_id()), 32);
    // The generation prompts: <|im_start|>assistant\n, then MiniMind-3's empty think block.
    const std::vector<int64_t> header = {1, 1388, 570, 811, 234};
    const std::vector<int64_t> think = {25, 234, 234, 26, 234, 234};
    std::vector<int64_t> tail = header;
    if (model == m.minimind3) tail.insert(tail.end(), think.begin(), think.end());
    ASSERT_GE(got.size(), tail.size());
    EXPECT_EQ(std::vector<int64_t>(got.end() - static_cast<ptrdiff_t>(tail.size()), got.end()),
              tail)
        << model;
  }
}

TEST(Forward, Errors) {
  const Models& m = models();
  const std::string out = m.dir + "/err.safetensors";
  auto r = forward(m.chatml, "--chat hi --text hi", out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("exactly one of --chat"));
  r = forward(m.chatml, "", out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("exactly one of --chat"));
  r = forward(m.dir + "/no-such-model", "--chat hi", out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("no-such-model does not exist"));
  r = forward(m.chatml, "--chat hi --image " + m.dir + "/missing.png", out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("missing.png"));
  r = forward(m.chatml, "--text 'a <image> b <image>' --image " + kImage, out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("2 <image> placeholders but there are 1 images"));
  EXPECT_FALSE(std::filesystem::exists(out));

  // A model directory whose chat template no family fits is rejected, naming the file.
  const std::string odd = m.dir + "/odd";
  std::filesystem::copy(m.chatml, odd);
  std::ofstream(odd + "/tokenizer_config.json") << R"({"chat_template": "{{ messages }}"})";
  r = forward(odd, "--chat hi", out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr(odd + "/tokenizer_config.json"));
  EXPECT_THAT(r.output, HasSubstr("supported families: chatml, minimind3"));
}

}  // namespace
}  // namespace minivlm
