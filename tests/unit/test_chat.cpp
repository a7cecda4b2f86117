// Chat rendering and label masks: ids against the Hugging Face tokenizers library on the rendered
// string, masks against the turn structure (goldens from scripts/reference/tokenizer_goldens.py).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "text/chat.h"

namespace minivlm {
namespace {

using nlohmann::json;
using testing::HasSubstr;
using testing::ThrowsMessage;

const std::string kMiniMind =
    MINIVLM_SOURCE_DIR "/data/tokenizer/tokenizer.json";

const Tokenizer& minimind() {
  static const Tokenizer tok = Tokenizer::from_file(kMiniMind);
  return tok;
}

// `images` images of one run of `tokens` image tokens each.
std::vector<ImagePrompt> image_runs(int images, int64_t tokens,
                                    const std::string& token = "<|image_pad|>") {
  return std::vector<ImagePrompt>(static_cast<size_t>(images), image_run(token, tokens));
}

struct Golden {
  std::vector<Message> messages;
  int images, tokens_per_image;
  std::vector<int32_t> ids, prompt_ids;
  std::vector<uint8_t> labels;
};

std::vector<Golden> goldens() {
  std::ifstream in(MINIVLM_SOURCE_DIR "/tests/goldens/tokenizer/chat.jsonl");
  std::vector<Golden> out;
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line);
    Golden g;
    for (const json& m : j["messages"]) g.messages.push_back({m["role"], m["content"]});
    g.images = j["images"];
    g.tokens_per_image = j["tokens_per_image"];
    g.ids = j["ids"].get<std::vector<int32_t>>();
    g.prompt_ids = j["prompt_ids"].get<std::vector<int32_t>>();
    g.labels = j["labels"].get<std::vector<uint8_t>>();
    out.push_back(std::move(g));
  }
  EXPECT_GE(out.size(), 10u);
  return out;
}

TEST(Chat, RendersChatMl) {
  const RenderedChat r = render_chat({{"system", "Be brief."},
                                      {"user", "What is this?"},
                                      {"assistant", "A cat."},
                                      {"user", "<image>Color?"}},
                                     image_runs(1, 2), true);
  EXPECT_EQ(r.text,
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\nWhat is this?<|im_end|>\n"
            "<|im_start|>assistant\nA cat.<|im_end|>\n"
            "<|im_start|>user\n<|image_pad|><|image_pad|>Color?<|im_end|>\n"
            "<|im_start|>assistant\n");
  ASSERT_EQ(r.supervised.size(), 1u);
  EXPECT_EQ(r.text.substr(r.supervised[0].first, r.supervised[0].second - r.supervised[0].first),
            "A cat.<|im_end|>\n");
}

TEST(Chat, PrependsOnePlaceholderPerImageToTheFirstUserMessage) {
  const RenderedChat r = render_chat(
      {{"system", "s"}, {"user", "Compare."}, {"assistant", "Same."}, {"user", "Sure?"}},
      image_runs(2, 1, "<I>"), false);
  EXPECT_EQ(r.text,
            "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\n<I>\n<I>\nCompare.<|im_end|>\n"
            "<|im_start|>assistant\nSame.<|im_end|>\n<|im_start|>user\nSure?<|im_end|>\n");
}

// The k-th placeholder takes the k-th image's own prompt (an image processor may give each image
// a different pattern, e.g. one run per tile between special tokens).
TEST(Chat, EachPlaceholderBecomesItsImagesPrompt) {
  const std::vector<ImagePrompt> images = {{"<t><I><I>\n<t><I><I>", 4}, {"<I><I>", 2}};
  const RenderedChat r =
      render_chat({{"user", "<image>A"}, {"assistant", "ok"}, {"user", "B<image>"}}, images, false);
  EXPECT_EQ(r.text,
            "<|im_start|>user\n<t><I><I>\n<t><I><I>A<|im_end|>\n"
            "<|im_start|>assistant\nok<|im_end|>\n<|im_start|>user\nB<I><I><|im_end|>\n");
}

// An image of two tiles: two runs of 4 between text; the check counts the prompts' image tokens.
TEST(Chat, MultiRunImagePromptsAreCheckedByTheirImageTokens) {
  ImagePrompt two_tiles = image_run("<|image_pad|>", 4);
  two_tiles.text += "\n" + two_tiles.text;
  two_tiles.image_tokens = 8;
  const EncodedChat e = encode_chat(minimind(), {{"user", "<image>Hi"}, {"assistant", "ok"}},
                                    {two_tiles}, "<|image_pad|>");
  std::vector<int64_t> run_lengths;
  for (size_t t = 0; t < e.ids.size(); ++t)
    if (e.ids[t] == 12) {
      if (t == 0 || e.ids[t - 1] != 12) run_lengths.push_back(0);
      ++run_lengths.back();
    }
  EXPECT_EQ(run_lengths, (std::vector<int64_t>{4, 4}));
  two_tiles.image_tokens = 7;
  EXPECT_THAT(
      [&] {
        encode_chat(minimind(), {{"user", "<image>Hi"}}, {two_tiles}, "<|image_pad|>");
      },
      ThrowsMessage<Error>(
          HasSubstr("holds 8 image tokens <|image_pad|> but its 1 images need 7")));
}

TEST(Chat, GoldenIdsLabelsAndPrompts) {
  for (const Golden& g : goldens()) {
    const std::vector<ImagePrompt> images = image_runs(g.images, g.tokens_per_image);
    const EncodedChat e = encode_chat(minimind(), g.messages, images, "<|image_pad|>");
    EXPECT_EQ(e.ids, g.ids) << g.messages[0].content;
    EXPECT_EQ(e.labels, g.labels) << g.messages[0].content;
    std::vector<Message> before_reply(g.messages.begin(), g.messages.end() - 1);
    EXPECT_EQ(encode_generation_prompt(minimind(), before_reply, images, "<|image_pad|>"),
              g.prompt_ids);
  }
}

// Each maximal run of supervised tokens spells one assistant reply plus "<|im_end|>\n", in order,
// and nothing else is supervised. Only where a reply starts with two or more whitespace characters
// may its first whitespace go to the header's token.
TEST(Chat, SupervisedRunsAreTheReplies) {
  const Tokenizer& tok = minimind();
  size_t shared = 0;
  for (const Golden& g : goldens()) {
    const EncodedChat e =
        encode_chat(tok, g.messages, image_runs(g.images, g.tokens_per_image), "<|image_pad|>");
    std::vector<std::string> runs;
    for (size_t t = 0; t < e.ids.size(); ++t) {
      if (!e.labels[t]) continue;
      if (t == 0 || !e.labels[t - 1]) runs.emplace_back();
      runs.back() += tok.token_bytes(e.ids[t]);
    }
    std::vector<std::string> replies;
    for (const Message& m : g.messages)
      if (m.role == "assistant") replies.push_back(m.content + "<|im_end|>\n");
    ASSERT_EQ(runs.size(), replies.size());
    for (size_t k = 0; k < runs.size(); ++k) {
      if (runs[k] == replies[k]) continue;
      const std::string& r = replies[k];
      const size_t lead = r.find_first_not_of(" \t\n");
      const size_t cut = r.size() - runs[k].size();
      EXPECT_TRUE(lead >= 2 && cut > 0 && cut < lead && r.substr(cut) == runs[k])
          << "run " << runs[k] << " of reply " << r;
      ++shared;
    }
    EXPECT_EQ(e.ids.back(), 234);
    EXPECT_TRUE(e.labels.back());
  }
  EXPECT_EQ(shared, 1u);  // the golden reply "  two spaces"
}

TEST(Chat, ImageTokensAreNeverSupervised) {
  const EncodedChat e = encode_chat(minimind(), {{"user", "<image> hi"}, {"assistant", "ok"}},
                                    image_runs(1, 49), "<|image_pad|>");
  EXPECT_EQ(std::count(e.ids.begin(), e.ids.end(), 12), 49);
  for (size_t t = 0; t < e.ids.size(); ++t)
    if (e.ids[t] == 12) {
      EXPECT_FALSE(e.labels[t]);
    }
}

TEST(Chat, Errors) {
  EXPECT_THAT(
      [&] {
        render_chat({{"bot", "hi"}}, {}, false);
      },
      ThrowsMessage<Error>(HasSubstr("unknown role 'bot'")));
  EXPECT_THAT(
      [&] {
        render_chat({{"user", "<image><image>"}}, image_runs(1, 4), false);
      },
      ThrowsMessage<Error>(HasSubstr("2 <image> placeholders but the sample has 1 images")));
  EXPECT_THAT(
      [&] {
        render_chat({{"user", "<image>"}}, {}, false);
      },
      ThrowsMessage<Error>(HasSubstr("1 <image> placeholders but the sample has 0")));
  EXPECT_THAT(
      [&] {
        render_chat({{"system", "s"}, {"assistant", "a"}}, image_runs(1, 4), false);
      },
      ThrowsMessage<Error>(HasSubstr("no user message")));
  EXPECT_THAT(
      [&] {
        render_chat({{"user", "x"}}, {image_run("<|image_pad|>", 3), {"none", 0}}, false);
      },
      ThrowsMessage<Error>(HasSubstr("the prompt of image 1 holds no image token")));
  EXPECT_THAT(
      [&] {
        encode_chat(minimind(), {{"user", "<image><|image_pad|>"}}, image_runs(1, 4),
                    "<|image_pad|>");
      },
      ThrowsMessage<Error>(
          HasSubstr("holds 5 image tokens <|image_pad|> but its 1 images need 4")));
}

}  // namespace
}  // namespace minivlm
