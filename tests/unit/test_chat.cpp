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
    MINIVLM_SOURCE_DIR "/../shared/data/minimind-tokenizer/tokenizer.json";

const Tokenizer& minimind() {
  static const Tokenizer tok = Tokenizer::from_file(kMiniMind);
  return tok;
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
                                     1, {2, "<|image_pad|>"}, true);
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
      {{"system", "s"}, {"user", "Compare."}, {"assistant", "Same."}, {"user", "Sure?"}}, 2,
      {1, "<I>"}, false);
  EXPECT_EQ(r.text,
            "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\n<I>\n<I>\nCompare.<|im_end|>\n"
            "<|im_start|>assistant\nSame.<|im_end|>\n<|im_start|>user\nSure?<|im_end|>\n");
}

TEST(Chat, GoldenIdsLabelsAndPrompts) {
  for (const Golden& g : goldens()) {
    const ChatFormat format{g.tokens_per_image, "<|image_pad|>"};
    const EncodedChat e = encode_chat(minimind(), g.messages, g.images, format);
    EXPECT_EQ(e.ids, g.ids) << g.messages[0].content;
    EXPECT_EQ(e.labels, g.labels) << g.messages[0].content;
    std::vector<Message> before_reply(g.messages.begin(), g.messages.end() - 1);
    EXPECT_EQ(encode_generation_prompt(minimind(), before_reply, g.images, format), g.prompt_ids);
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
        encode_chat(tok, g.messages, g.images, {g.tokens_per_image, "<|image_pad|>"});
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
  const EncodedChat e = encode_chat(minimind(), {{"user", "<image> hi"}, {"assistant", "ok"}}, 1,
                                    {49, "<|image_pad|>"});
  EXPECT_EQ(std::count(e.ids.begin(), e.ids.end(), 12), 49);
  for (size_t t = 0; t < e.ids.size(); ++t)
    if (e.ids[t] == 12) {
      EXPECT_FALSE(e.labels[t]);
    }
}

TEST(Chat, Errors) {
  const ChatFormat format{4, "<|image_pad|>"};
  EXPECT_THAT(
      [&] {
        render_chat({{"bot", "hi"}}, 0, format, false);
      },
      ThrowsMessage<Error>(HasSubstr("unknown role 'bot'")));
  EXPECT_THAT(
      [&] {
        render_chat({{"user", "<image><image>"}}, 1, format, false);
      },
      ThrowsMessage<Error>(HasSubstr("2 <image> placeholders but the sample has 1 images")));
  EXPECT_THAT(
      [&] {
        render_chat({{"user", "<image>"}}, 0, format, false);
      },
      ThrowsMessage<Error>(HasSubstr("1 <image> placeholders but the sample has 0")));
  EXPECT_THAT(
      [&] {
        render_chat({{"system", "s"}, {"assistant", "a"}}, 1, format, false);
      },
      ThrowsMessage<Error>(HasSubstr("no user message")));
  EXPECT_THAT(
      [&] {
        render_chat({{"user", "x"}}, 1, {0, "<|image_pad|>"}, false);
      },
      ThrowsMessage<Error>(HasSubstr("tokens_per_image is 0")));
  EXPECT_THAT(
      [&] {
        encode_chat(minimind(), {{"user", "<image><|image_pad|>"}}, 1, format);
      },
      ThrowsMessage<Error>(
          HasSubstr("holds 5 image tokens <|image_pad|> but its 1 images need 4")));
}

}  // namespace
}  // namespace minivlm
