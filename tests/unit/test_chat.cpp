// Chat rendering and label masks: ids against the Hugging Face tokenizers library on the rendered
// string, masks against the turn structure (ChatML goldens from
// scripts/reference/tokenizer_goldens.py); MiniMind-3's template against transformers'
// apply_chat_template (scripts/reference/chat_template_goldens.py); chat template recognition.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <unistd.h>

#include "core/error.h"
#include "text/chat.h"

namespace minivlm {
namespace {

using nlohmann::json;
using testing::AllOf;
using testing::HasSubstr;
using testing::ThrowsMessage;

const std::string kMiniMind = MINIVLM_SOURCE_DIR "/data/tokenizer/tokenizer.json";

// The MiniMind tokenizer with the ChatML template (SPEC §3), as a model directory without a
// tokenizer_config.json has it.
const Tokenizer& minimind() {
  static const Tokenizer tok = [] {
    Tokenizer t = Tokenizer::from_file(kMiniMind);
    t.set_chat_template(ChatTemplate::chatml);
    return t;
  }();
  return tok;
}

// The MiniMind tokenizer as data/tokenizer holds it: with MiniMind-3's tokenizer_config.json.
const Tokenizer& minimind3() {
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
                                     image_runs(1, 2), true, ChatTemplate::chatml);
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
      image_runs(2, 1, "<I>"), false, ChatTemplate::chatml);
  EXPECT_EQ(r.text,
            "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\n<I>\n<I>\nCompare.<|im_end|>\n"
            "<|im_start|>assistant\nSame.<|im_end|>\n<|im_start|>user\nSure?<|im_end|>\n");
}

// The k-th placeholder takes the k-th image's own prompt (an image processor may give each image
// a different pattern, e.g. one run per tile between special tokens).
TEST(Chat, EachPlaceholderBecomesItsImagesPrompt) {
  const std::vector<ImagePrompt> images = {{"<t><I><I>\n<t><I><I>", 4}, {"<I><I>", 2}};
  const RenderedChat r =
      render_chat({{"user", "<image>A"}, {"assistant", "ok"}, {"user", "B<image>"}}, images, false,
                  ChatTemplate::chatml);
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
        render_chat({{"bot", "hi"}}, {}, false, ChatTemplate::chatml);
      },
      ThrowsMessage<Error>(HasSubstr("unknown role 'bot'")));
  EXPECT_THAT(
      [&] {
        render_chat({{"user", "<image><image>"}}, image_runs(1, 4), false, ChatTemplate::chatml);
      },
      ThrowsMessage<Error>(HasSubstr("2 <image> placeholders but the sample has 1 images")));
  EXPECT_THAT(
      [&] {
        render_chat({{"user", "<image>"}}, {}, false, ChatTemplate::chatml);
      },
      ThrowsMessage<Error>(HasSubstr("1 <image> placeholders but the sample has 0")));
  EXPECT_THAT(
      [&] {
        render_chat({{"system", "s"}, {"assistant", "a"}}, image_runs(1, 4), false,
                    ChatTemplate::chatml);
      },
      ThrowsMessage<Error>(HasSubstr("no user message")));
  EXPECT_THAT(
      [&] {
        render_chat({{"user", "x"}}, {image_run("<|image_pad|>", 3), {"none", 0}}, false,
                    ChatTemplate::chatml);
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

// ---- MiniMind-3's chat template -----------------------------------------------------------------

struct TemplateGolden {
  std::vector<Message> messages;
  int images, tokens_per_image;
  bool generation_prompt;
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<TemplateGolden> minimind3_goldens() {
  std::ifstream in(MINIVLM_SOURCE_DIR "/tests/goldens/tokenizer/chat_minimind3.jsonl");
  std::vector<TemplateGolden> out;
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line);
    TemplateGolden g;
    for (const json& m : j["messages"]) g.messages.push_back({m["role"], m["content"]});
    g.images = j["images"];
    g.tokens_per_image = j["tokens_per_image"];
    g.generation_prompt = j["generation_prompt"];
    g.text = j["text"];
    g.ids = j["ids"].get<std::vector<int32_t>>();
    out.push_back(std::move(g));
  }
  EXPECT_GE(out.size(), 20u);
  return out;
}

// The supervised tokens, each maximal run of them as its text.
std::vector<std::string> supervised_runs(const Tokenizer& tok, const EncodedChat& e) {
  std::vector<std::string> runs;
  for (size_t t = 0; t < e.ids.size(); ++t) {
    if (!e.labels[t]) continue;
    if (t == 0 || !e.labels[t - 1]) runs.emplace_back();
    runs.back() += tok.token_bytes(e.ids[t]);
  }
  return runs;
}

TEST(ChatTemplates, DataTokenizerCarriesMiniMind3sTemplate) {
  EXPECT_EQ(minimind3().chat_template(), ChatTemplate::minimind3);
  std::ifstream in(kMiniMind, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(Tokenizer::from_json(text.str(), kMiniMind).chat_template(), ChatTemplate::chatml);
}

// Text and ids as transformers' apply_chat_template gives them, for every golden conversation.
TEST(ChatTemplates, MiniMind3MatchesTransformers) {
  for (const TemplateGolden& g : minimind3_goldens()) {
    const std::vector<ImagePrompt> images = image_runs(g.images, g.tokens_per_image);
    EXPECT_EQ(render_chat(g.messages, images, g.generation_prompt, ChatTemplate::minimind3).text,
              g.text);
    const std::vector<int32_t> ids =
        g.generation_prompt
            ? encode_generation_prompt(minimind3(), g.messages, images, "<|image_pad|>")
            : encode_chat(minimind3(), g.messages, images, "<|image_pad|>").ids;
    EXPECT_EQ(ids, g.ids) << g.text;
  }
}

// MiniMind-V supervises everything after "<|im_start|>assistant\n" up to and including
// "<|im_end|>\n": the think block too, empty or not.
TEST(ChatTemplates, MiniMind3SupervisesTheThinkBlock) {
  const Tokenizer& tok = minimind3();
  const EncodedChat one = encode_chat(tok, {{"user", "<image>\nHi"}, {"assistant", "REPLY"}},
                                      image_runs(1, 3), "<|image_pad|>");
  EXPECT_EQ(supervised_runs(tok, one),
            (std::vector<std::string>{"<think>\n\n</think>\n\nREPLY<|im_end|>\n"}));
  // The header "<|im_start|>assistant\n" ([1, 1388, 570, 811, 234]) is not supervised; the empty
  // think block "<think>\n\n</think>\n\n" is [25, 234, 234, 26, 234, 234].
  const auto think = std::find(one.ids.begin(), one.ids.end(), 25);
  ASSERT_NE(think, one.ids.end());
  const size_t at = static_cast<size_t>(think - one.ids.begin());
  ASSERT_GE(at, 5u);
  EXPECT_EQ(std::vector<int32_t>(think - 5, think), (std::vector<int32_t>{1, 1388, 570, 811, 234}));
  EXPECT_EQ(std::vector<int32_t>(think, think + 6),
            (std::vector<int32_t>{25, 234, 234, 26, 234, 234}));
  EXPECT_EQ(std::count(one.labels.begin(), one.labels.begin() + static_cast<ptrdiff_t>(at), 1), 0);

  const EncodedChat two = encode_chat(tok,
                                      {{"system", "S"},
                                       {"user", "q1"},
                                       {"assistant", "<think>\nbecause\n</think>\n\nA1"},
                                       {"user", "q2"},
                                       {"assistant", "\nA2"}},
                                      {}, "<|image_pad|>");
  EXPECT_EQ(supervised_runs(tok, two),
            (std::vector<std::string>{"<think>\nbecause\n</think>\n\nA1<|im_end|>\n",
                                      "<think>\n\n</think>\n\nA2<|im_end|>\n"}));
}

TEST(ChatTemplates, MiniMind3GenerationPromptClosesAnEmptyThinkBlock) {
  const std::vector<int32_t> ids =
      encode_generation_prompt(minimind3(), {{"user", "Hi"}}, {}, "<|image_pad|>");
  ASSERT_GE(ids.size(), 11u);
  EXPECT_EQ(std::vector<int32_t>(ids.end() - 11, ids.end()),
            (std::vector<int32_t>{1, 1388, 570, 811, 234, 25, 234, 234, 26, 234, 234}));
  EXPECT_EQ(end_of_turn_id(minimind3()), 2);
}

// A fresh directory holding a copy of the MiniMind tokenizer.json and, when `config` is not
// empty, a tokenizer_config.json with that text.
// Hugging Face's ChatML template (its documentation's example).
const std::string kHfChatml =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\\n' }}{% endif %}";

std::string tokenizer_dir(const std::string& name, const std::string& config) {
  const std::filesystem::path d = std::filesystem::path(::testing::TempDir()) /
                                  ("minivlm_chat_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  std::filesystem::copy_file(kMiniMind, d / "tokenizer.json");
  if (!config.empty()) std::ofstream(d / "tokenizer_config.json", std::ios::binary) << config;
  return (d / "tokenizer.json").string();
}

TEST(ChatTemplates, NoTemplateIsChatMl) {
  const Tokenizer alone = Tokenizer::from_file(tokenizer_dir("alone", ""));
  EXPECT_EQ(alone.chat_template(), ChatTemplate::chatml);
  const Tokenizer without = Tokenizer::from_file(
      tokenizer_dir("no_template", R"({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"})"));
  EXPECT_EQ(without.chat_template(), ChatTemplate::chatml);
  // Rendered as before tokenizer_config.json was read: the ChatML goldens.
  for (const Golden& g : goldens())
    EXPECT_EQ(
        encode_chat(alone, g.messages, image_runs(g.images, g.tokens_per_image), "<|image_pad|>")
            .ids,
        g.ids);
}

// Hugging Face's ChatML template (its documentation's example) is recognised as chatml;
// MiniMind-3's with other line breaks and indentation is still minimind3.
TEST(ChatTemplates, RecognisesFamiliesByTheirText) {
  EXPECT_EQ(recognize_chat_template(kHfChatml, "t"), ChatTemplate::chatml);
  std::ifstream in(MINIVLM_SOURCE_DIR "/data/tokenizer/tokenizer_config.json");
  const std::string minimind3_jinja = json::parse(in)["chat_template"];
  std::string reflowed;
  for (char c : minimind3_jinja) reflowed += c == '\n' ? std::string("\n  \t") : std::string(1, c);
  EXPECT_EQ(recognize_chat_template(reflowed, "t"), ChatTemplate::minimind3);
}

// A chat_template.jinja beside the tokenizer (newer Hugging Face tokenizers) takes precedence over
// tokenizer_config.json's chat_template.
TEST(ChatTemplates, ChatTemplateJinjaFileTakesPrecedence) {
  std::ifstream in(MINIVLM_SOURCE_DIR "/data/tokenizer/tokenizer_config.json");
  const std::string minimind3_jinja = json::parse(in)["chat_template"];
  const std::string path = tokenizer_dir("jinja", json({{"chat_template", kHfChatml}}).dump());
  EXPECT_EQ(Tokenizer::from_file(path).chat_template(), ChatTemplate::chatml);
  std::ofstream(std::filesystem::path(path).parent_path() / "chat_template.jinja")
      << minimind3_jinja;
  EXPECT_EQ(Tokenizer::from_file(path).chat_template(), ChatTemplate::minimind3);
}

TEST(ChatTemplates, UnknownTemplatesAreErrorsNamingTheFile) {
  // MiniMind2's template injects a default system prompt: not a format we render.
  const std::string minimind2 = json({{"chat_template",
                                       "{% if messages[0]['role'] == 'system' %}{{ "
                                       "'<|im_start|>system\\n' + messages[0]['content'] + "
                                       "'<|im_end|>\\n' }}{% else %}{{ '<|im_start|>system\\nYou "
                                       "are a helpful assistant<|im_end|>\\n' }}{% endif %}"}})
                                    .dump();
  const std::string path = tokenizer_dir("unknown", minimind2);
  const std::string config = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  EXPECT_THAT([&] { Tokenizer::from_file(path); },
              ThrowsMessage<Error>(AllOf(HasSubstr(config), HasSubstr("not one that minivlm can"),
                                         HasSubstr("supported families: chatml, minimind3"))));
  // A ChatML loop with a default system prompt is not plain chatml either.
  EXPECT_THROW(recognize_chat_template(
                   "{{ '<|im_start|>system\\nYou are Qwen.<|im_end|>\\n' }}{% for message in "
                   "messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                   "'<|im_end|>' + '\\n'}}{% endfor %}{{ '<|im_start|>assistant\\n' }}",
                   "t"),
               Error);
  EXPECT_THAT([&] { Tokenizer::from_file(tokenizer_dir("bad_json", "{not json")); },
              ThrowsMessage<Error>(HasSubstr("tokenizer_config.json: not valid JSON")));
  EXPECT_THAT([&] { Tokenizer::from_file(tokenizer_dir("list", R"({"chat_template": [1]})")); },
              ThrowsMessage<Error>(HasSubstr("chat_template must be a string")));
}

// ---- SmolVLM's chat template --------------------------------------------------------------------

const std::string kSmolVlm = MINIVLM_SOURCE_DIR "/tests/fixtures/smolvlm-tokenizer/tokenizer.json";

// data/tokenizer/tokenizer.json plus SmolVLM's special tokens, with SmolVLM2's chat_template.json.
const Tokenizer& smolvlm() {
  static const Tokenizer tok = Tokenizer::from_file(kSmolVlm);
  return tok;
}

struct SmolVlmGolden {
  std::vector<Message> messages;
  std::vector<ImagePrompt> media;
  bool generation_prompt;
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<SmolVlmGolden> smolvlm_goldens() {
  std::ifstream in(MINIVLM_SOURCE_DIR "/tests/goldens/tokenizer/chat_smolvlm.jsonl");
  std::vector<SmolVlmGolden> out;
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line);
    SmolVlmGolden g;
    for (const json& m : j["messages"]) g.messages.push_back({m["role"], m["content"]});
    for (const json& m : j["media"]) g.media.push_back({m["text"], m["image_tokens"], m["video"]});
    g.generation_prompt = j["generation_prompt"];
    g.text = j["text"];
    g.ids = j["ids"].get<std::vector<int32_t>>();
    out.push_back(std::move(g));
  }
  EXPECT_GE(out.size(), 20u);
  return out;
}

TEST(ChatTemplates, SmolVlmFromChatTemplateJson) {
  EXPECT_EQ(smolvlm().chat_template(), ChatTemplate::smolvlm);
  EXPECT_EQ(end_of_turn_id(smolvlm()), smolvlm().token_to_id("<end_of_utterance>"));
  // SmolVLM-Instruct's template (images only), one line in its chat_template.json.
  const std::string instruct =
      "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if "
      "message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line "
      "in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}{% elif "
      "line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% "
      "endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";
  EXPECT_EQ(recognize_chat_template(instruct, "t"), ChatTemplate::smolvlm);
  // SmolVLM-Base ends turns with <|endoftext|>: not this family.
  std::string base = instruct;
  base.replace(base.find("<end_of_utterance>"), 18, "<|endoftext|>");
  EXPECT_THROW(recognize_chat_template(base, "t"), Error);
  // chat_template.json is read after chat_template.jinja and before tokenizer_config.json.
  const std::string path =
      tokenizer_dir("smolvlm_json", json({{"chat_template", kHfChatml}}).dump());
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::ofstream(dir / "chat_template.json") << json({{"chat_template", instruct}}).dump();
  EXPECT_EQ(Tokenizer::from_file(path).chat_template(), ChatTemplate::smolvlm);
  std::ofstream(dir / "chat_template.jinja") << kHfChatml;
  EXPECT_EQ(Tokenizer::from_file(path).chat_template(), ChatTemplate::chatml);
  std::filesystem::remove(dir / "chat_template.jinja");
  std::ofstream(dir / "chat_template.json") << R"({"other": 1})";
  EXPECT_THAT([&] { Tokenizer::from_file(path); },
              ThrowsMessage<Error>(AllOf(HasSubstr("chat_template.json"),
                                         HasSubstr("chat_template must be a string"))));
}

// Text and ids as transformers' apply_chat_template and SmolVLMProcessor's placeholder expansion
// give them, images and videos included.
TEST(ChatTemplates, SmolVlmMatchesTransformers) {
  for (const SmolVlmGolden& g : smolvlm_goldens()) {
    EXPECT_EQ(render_chat(g.messages, g.media, g.generation_prompt, ChatTemplate::smolvlm).text,
              g.text);
    const std::vector<int32_t> ids =
        g.generation_prompt ? encode_generation_prompt(smolvlm(), g.messages, g.media, "<image>")
                            : encode_chat(smolvlm(), g.messages, g.media, "<image>").ids;
    EXPECT_EQ(ids, g.ids) << g.text;
  }
}

// Supervised: what follows "Assistant:" up to and including <end_of_utterance>, the space after
// the colon too; not the "\n" after it, not the headers, not the user turns.
TEST(ChatTemplates, SmolVlmSupervisesTheReplyAndItsEndOfUtterance) {
  const Tokenizer& tok = smolvlm();
  const EncodedChat e = encode_chat(
      tok,
      {{"system", "S"},
       {"user", "<image>Hi"},
       {"assistant", "A red circle."},
       {"user", "More?"},
       {"assistant", "No."}},
      {{"<fake_token_around_image><global-img><image><image><fake_token_around_image>", 2}},
      "<image>");
  EXPECT_EQ(supervised_runs(tok, e), (std::vector<std::string>{" A red circle.<end_of_utterance>",
                                                               " No.<end_of_utterance>"}));
  const std::vector<int32_t> prompt =
      encode_generation_prompt(tok, {{"user", "Hi"}}, {}, "<image>");
  EXPECT_EQ(tok.decode(prompt), "<|im_start|>User: Hi<end_of_utterance>\nAssistant:");
}

TEST(ChatTemplates, SmolVlmVideoPlaceholders) {
  const ImagePrompt image{"[I]", 1}, video{"[V]", 1, true};
  EXPECT_EQ(
      render_chat({{"user", "<video>What happens?"}}, {video}, true, ChatTemplate::smolvlm).text,
      "<|im_start|>User: [V]What happens?<end_of_utterance>\nAssistant:");
  // No placeholder: one per medium before the first user message, in order.
  EXPECT_EQ(render_chat({{"user", "Both?"}}, {image, video}, false, ChatTemplate::chatml).text,
            "<|im_start|>user\n[I]\n[V]\nBoth?<|im_end|>\n");
  EXPECT_EQ(expand_images("a<video>b<image>c", {video, image}), "a[V]b[I]c");
  EXPECT_THAT(
      [&] {
        expand_images("a<video>b<image>c", {image, video});
      },
      ThrowsMessage<Error>(HasSubstr("<video> as placeholder 1 but media 1 is an image")));
  EXPECT_THAT(
      [&] {
        render_chat({{"user", "<video><video>"}}, {video}, false, ChatTemplate::smolvlm);
      },
      ThrowsMessage<Error>(
          HasSubstr("hold 0 <image> and 2 <video> placeholders but the sample has 0 images and 1 "
                    "videos")));
}

}  // namespace
}  // namespace minivlm
