#include "text/chat.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string_view>
#include <tuple>

#include "core/error.h"

namespace minivlm {
namespace {

constexpr std::string_view kImageMarker = "<image>";
constexpr std::string_view kVideoMarker = "<video>";

// The next <image> or <video> placeholder of `s` at or after `from`: its offset (npos when none)
// and whether it is a video's.
std::pair<size_t, bool> next_placeholder(std::string_view s, size_t from) {
  const size_t image = s.find(kImageMarker, from), video = s.find(kVideoMarker, from);
  return video < image ? std::pair{video, true} : std::pair{image, false};
}

// The placeholders of `s` in order: true for <video>, false for <image>.
std::vector<bool> placeholders_of(std::string_view s) {
  std::vector<bool> kinds;
  for (auto [at, video] = next_placeholder(s, 0); at != std::string_view::npos;
       std::tie(at, video) = next_placeholder(s, at + kImageMarker.size()))
    kinds.push_back(video);
  return kinds;
}

const char* media_name(bool video) { return video ? "a video" : "an image"; }

// Appends `content` with its placeholders replaced by the next media's prompts, counting them in
// `next` (their kinds were checked against the placeholders' before).
void append_expanded(std::string& out, std::string_view content,
                     const std::vector<ImagePrompt>& images, size_t& next) {
  size_t from = 0;
  for (auto [at, video] = next_placeholder(content, 0); at != std::string_view::npos;
       std::tie(at, video) = next_placeholder(content, from)) {
    out.append(content, from, at - from);
    out += images[next++].text;
    from = at + kImageMarker.size();
  }
  out.append(content, from, std::string::npos);
}

// Throws when the placeholders (in order) do not fit the media: their number, or a <video> where
// the media is an image or the other way round. `holds` ("the text holds") and `has` ("there
// are") phrase the count message.
void check_placeholders(const std::vector<bool>& kinds, const std::vector<ImagePrompt>& images,
                        const std::string& holds, const std::string& has) {
  size_t videos = 0, video_marks = 0;
  for (const ImagePrompt& p : images) videos += p.video ? 1 : 0;
  for (bool video : kinds) video_marks += video ? 1 : 0;
  if (videos == 0 && video_marks == 0)
    MV_CHECK(kinds.size() == images.size(), holds, " ", kinds.size(), " <image> placeholders but ",
             has, " ", images.size(), " images");
  else
    MV_CHECK(kinds.size() == images.size(), holds, " ", kinds.size() - video_marks, " <image> and ",
             video_marks, " <video> placeholders but ", has, " ", images.size() - videos,
             " images and ", videos, " videos");
  for (size_t k = 0; k < kinds.size(); ++k)
    MV_CHECK(kinds[k] == images[k].video, holds, " ", kinds[k] ? "<video>" : "<image>",
             " as placeholder ", k + 1, " but media ", k + 1, " is ", media_name(images[k].video));
}

void check_image_tokens(const Tokenizer& tok, const std::vector<int32_t>& ids,
                        const std::vector<ImagePrompt>& images, const std::string& image_token) {
  int64_t expected = 0;
  for (const ImagePrompt& p : images) expected += p.image_tokens;
  const std::optional<int32_t> image_id = tok.find_token(image_token);
  if (!image_id) {
    MV_CHECK(expected == 0, "chat: the tokenizer has no image token ", image_token);
    return;
  }
  const auto found = std::count(ids.begin(), ids.end(), *image_id);
  MV_CHECK(found == expected, "chat: the conversation holds ", found, " image tokens ", image_token,
           " but its ", images.size(), " images need ", expected,
           " (does a message spell the image token itself?)");
}

std::string_view strip_newlines_left(std::string_view s) {
  const size_t at = s.find_first_not_of('\n');
  return at == std::string_view::npos ? std::string_view() : s.substr(at);
}

std::string_view strip_newlines_right(std::string_view s) {
  const size_t at = s.find_last_not_of('\n');
  return at == std::string_view::npos ? std::string_view() : s.substr(0, at + 1);
}

// What the family's template writes around a turn and as the generation prompt. A new family
// (text/chat_template.h) adds its case to each.
// What comes before the first turn.
std::string conversation_begin(ChatTemplate t) {
  return t == ChatTemplate::smolvlm ? "<|im_start|>" : "";
}

// Jinja's capitalize: the first character upper case, the rest lower case (ASCII roles).
std::string capitalized(const std::string& role) {
  std::string s = role;
  for (size_t i = 0; i < s.size(); ++i)
    s[i] = static_cast<char>(i == 0 ? std::toupper(static_cast<unsigned char>(s[i]))
                                    : std::tolower(static_cast<unsigned char>(s[i])));
  return s;
}

// The header of a turn, in two parts: what is never supervised, then what is supervised with an
// assistant reply (SmolVLM's ": " before the content, whose space the model writes after the
// generation prompt "Assistant:"). `content` is the turn's content before placeholder expansion.
std::pair<std::string, std::string> turn_begin(ChatTemplate t, const std::string& role,
                                               std::string_view content) {
  switch (t) {
    case ChatTemplate::chatml:
    case ChatTemplate::minimind3:
      return {"<|im_start|>" + role + "\n", ""};
    case ChatTemplate::smolvlm:
      // The template writes ":" alone when the first content item is an image.
      return {capitalized(role) + ":", content.starts_with(kImageMarker) ? "" : " "};
  }
  MV_FAIL("chat: no turn format for chat template ", static_cast<int>(t));
}

// The end of a turn, in two parts: what is supervised with an assistant reply, then what is not.
std::pair<std::string, std::string> turn_end(ChatTemplate t) {
  switch (t) {
    case ChatTemplate::chatml:
    case ChatTemplate::minimind3:
      return {"<|im_end|>\n", ""};
    case ChatTemplate::smolvlm:
      return {"<end_of_utterance>", "\n"};
  }
  MV_FAIL("chat: no turn format for chat template ", static_cast<int>(t));
}

std::string generation_prompt_text(ChatTemplate t) {
  switch (t) {
    case ChatTemplate::chatml:
      return "<|im_start|>assistant\n";
    case ChatTemplate::minimind3:
      return "<|im_start|>assistant\n<think>\n\n</think>\n\n";
    case ChatTemplate::smolvlm:
      return "Assistant:";
  }
  MV_FAIL("chat: no generation prompt for chat template ", static_cast<int>(t));
}

// MiniMind-3's assistant turn body, its Jinja template in C++:
//   reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n')
//   content = content.split('</think>')[-1].lstrip('\n')       (both only when '</think>' in
//   content)
//   '<think>\n' + reasoning.strip('\n') + '\n</think>\n\n' + content.lstrip('\n')
std::string minimind3_assistant_body(std::string_view content, bool empty_think) {
  constexpr std::string_view kOpen = "<think>", kClose = "</think>";
  std::string_view reasoning;
  if (const size_t first_close = content.find(kClose); first_close != std::string_view::npos) {
    reasoning = strip_newlines_right(content.substr(0, first_close));
    if (const size_t open = reasoning.rfind(kOpen); open != std::string_view::npos)
      reasoning.remove_prefix(open + kOpen.size());
    reasoning = strip_newlines_left(reasoning);
    content.remove_prefix(content.rfind(kClose) + kClose.size());
  }
  reasoning = strip_newlines_left(strip_newlines_right(reasoning));
  if (reasoning.empty() && !empty_think) return std::string(strip_newlines_left(content));
  std::string out = "<think>\n";
  out += reasoning;
  out += "\n</think>\n\n";
  out += strip_newlines_left(content);
  return out;
}

std::string assistant_body(ChatTemplate t, const std::string& content, const ChatOptions& options) {
  switch (t) {
    case ChatTemplate::chatml:
    case ChatTemplate::smolvlm:
      return content;
    case ChatTemplate::minimind3:
      return minimind3_assistant_body(content, options.empty_think);
  }
  MV_FAIL("chat: no assistant format for chat template ", static_cast<int>(t));
}

}  // namespace

ImagePrompt image_run(const std::string& image_token, int64_t n) {
  ImagePrompt p{{}, n};
  for (int64_t i = 0; i < n; ++i) p.text += image_token;
  return p;
}

std::vector<bool> placeholder_kinds(const std::vector<Message>& messages) {
  std::vector<bool> kinds;
  for (const Message& m : messages)
    if (m.role == "user")
      for (bool video : placeholders_of(m.content)) kinds.push_back(video);
  return kinds;
}

std::string expand_images(const std::string& text, const std::vector<ImagePrompt>& images) {
  check_placeholders(placeholders_of(text), images, "the text holds", "there are");
  std::string out;
  size_t next = 0;
  append_expanded(out, text, images, next);
  return out;
}

RenderedChat render_chat(const std::vector<Message>& messages,
                         const std::vector<ImagePrompt>& images, bool generation_prompt,
                         ChatTemplate chat_template, const ChatOptions& options) {
  const int num_images = static_cast<int>(images.size());
  for (int k = 0; k < num_images; ++k)
    MV_CHECK(images[k].image_tokens > 0, "chat: the prompt of ",
             images[k].video ? "video " : "image ", k, " holds no image token");
  std::vector<bool> kinds;
  const Message* first_user = nullptr;
  for (const Message& m : messages) {
    MV_CHECK(m.role == "system" || m.role == "user" || m.role == "assistant",
             "chat: unknown role '", m.role, "' (valid roles: system, user, assistant)");
    if (m.role != "user") continue;
    if (!first_user) first_user = &m;
    for (bool video : placeholders_of(m.content)) kinds.push_back(video);
  }
  std::string prefix;
  if (num_images > 0 && kinds.empty()) {
    MV_CHECK(first_user != nullptr, "chat: ", num_images,
             " images or videos but no user message to put them in");
    for (const ImagePrompt& p : images) {
      prefix += media_placeholder(chat_template, p.video);
      kinds.push_back(p.video);
    }
  }
  check_placeholders(kinds, images, "chat: the user messages hold", "the sample has");

  RenderedChat out;
  out.text = conversation_begin(chat_template);
  size_t next_image = 0;
  for (const Message& m : messages) {
    const std::string content = &m == first_user ? prefix + m.content : m.content;
    const auto [header, supervised_header] = turn_begin(chat_template, m.role, content);
    out.text += header;
    const size_t begin = out.text.size();
    out.text += supervised_header;
    if (m.role == "user")
      append_expanded(out.text, content, images, next_image);
    else if (m.role == "assistant")
      out.text += assistant_body(chat_template, content, options);
    else
      out.text += content;
    const auto [end, trailer] = turn_end(chat_template);
    out.text += end;
    if (m.role == "assistant") out.supervised.emplace_back(begin, out.text.size());
    out.text += trailer;
  }
  if (generation_prompt) out.text += generation_prompt_text(chat_template);
  return out;
}

EncodedChat encode_chat(const Tokenizer& tok, const std::vector<Message>& messages,
                        const std::vector<ImagePrompt>& images, const std::string& image_token,
                        const ChatOptions& options) {
  const RenderedChat chat = render_chat(messages, images, false, tok.chat_template(), options);
  Tokenizer::Encoding enc = tok.encode_with_offsets(chat.text);
  check_image_tokens(tok, enc.ids, images, image_token);
  EncodedChat out;
  out.labels.assign(enc.ids.size(), 0);
  size_t span = 0;
  for (size_t t = 0; t < enc.ids.size(); ++t) {
    while (span < chat.supervised.size() && enc.starts[t] >= chat.supervised[span].second) ++span;
    if (span < chat.supervised.size() && enc.starts[t] >= chat.supervised[span].first)
      out.labels[t] = 1;
  }
  out.ids = std::move(enc.ids);
  return out;
}

std::vector<int32_t> encode_generation_prompt(const Tokenizer& tok,
                                              const std::vector<Message>& messages,
                                              const std::vector<ImagePrompt>& images,
                                              const std::string& image_token) {
  std::vector<int32_t> ids =
      tok.encode(render_chat(messages, images, true, tok.chat_template()).text);
  check_image_tokens(tok, ids, images, image_token);
  return ids;
}

int32_t end_of_turn_id(const Tokenizer& tok) {
  return tok.token_to_id(chat_template_family(tok.chat_template()).end_of_turn);
}

std::string media_placeholder(ChatTemplate chat_template, bool video) {
  const std::string tag = video ? "<video>" : "<image>";
  return chat_template == ChatTemplate::smolvlm ? tag : tag + "\n";
}

}  // namespace minivlm
