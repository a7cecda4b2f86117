#include "text/chat.h"

#include <algorithm>
#include <optional>

#include "core/error.h"

namespace minivlm {
namespace {

constexpr std::string_view kPlaceholder = "<image>";

size_t count_placeholders(const std::string& s) {
  size_t n = 0;
  for (size_t at = s.find(kPlaceholder); at != std::string::npos;
       at = s.find(kPlaceholder, at + kPlaceholder.size()))
    ++n;
  return n;
}

// Appends `content` with its placeholders replaced by the next images' prompts, counting them in
// `next`.
void append_expanded(std::string& out, const std::string& content,
                     const std::vector<ImagePrompt>& images, size_t& next) {
  size_t from = 0;
  for (size_t at = content.find(kPlaceholder); at != std::string::npos;
       at = content.find(kPlaceholder, from)) {
    out.append(content, from, at - from);
    out += images[next++].text;
    from = at + kPlaceholder.size();
  }
  out.append(content, from, std::string::npos);
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
std::string turn_begin(ChatTemplate t, const std::string& role) {
  switch (t) {
    case ChatTemplate::chatml:
    case ChatTemplate::minimind3:
      return "<|im_start|>" + role + "\n";
  }
  MV_FAIL("chat: no turn format for chat template ", static_cast<int>(t));
}

std::string turn_end(ChatTemplate t) {
  switch (t) {
    case ChatTemplate::chatml:
    case ChatTemplate::minimind3:
      return "<|im_end|>\n";
  }
  MV_FAIL("chat: no turn format for chat template ", static_cast<int>(t));
}

std::string generation_prompt_text(ChatTemplate t) {
  switch (t) {
    case ChatTemplate::chatml:
      return "<|im_start|>assistant\n";
    case ChatTemplate::minimind3:
      return "<|im_start|>assistant\n<think>\n\n</think>\n\n";
  }
  MV_FAIL("chat: no generation prompt for chat template ", static_cast<int>(t));
}

// MiniMind-3's assistant turn body, its Jinja template in C++:
//   reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n')
//   content = content.split('</think>')[-1].lstrip('\n')       (both only when '</think>' in
//   content)
//   '<think>\n' + reasoning.strip('\n') + '\n</think>\n\n' + content.lstrip('\n')
std::string minimind3_assistant_body(std::string_view content) {
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
  std::string out = "<think>\n";
  out += reasoning;
  out += "\n</think>\n\n";
  out += strip_newlines_left(content);
  return out;
}

std::string assistant_body(ChatTemplate t, const std::string& content) {
  switch (t) {
    case ChatTemplate::chatml:
      return content;
    case ChatTemplate::minimind3:
      return minimind3_assistant_body(content);
  }
  MV_FAIL("chat: no assistant format for chat template ", static_cast<int>(t));
}

}  // namespace

ImagePrompt image_run(const std::string& image_token, int64_t n) {
  ImagePrompt p{{}, n};
  for (int64_t i = 0; i < n; ++i) p.text += image_token;
  return p;
}

std::string expand_images(const std::string& text, const std::vector<ImagePrompt>& images) {
  const size_t placeholders = count_placeholders(text);
  MV_CHECK(placeholders == images.size(), "the text holds ", placeholders,
           " <image> placeholders but there are ", images.size(), " images");
  std::string out;
  size_t next = 0;
  append_expanded(out, text, images, next);
  return out;
}

RenderedChat render_chat(const std::vector<Message>& messages,
                         const std::vector<ImagePrompt>& images, bool generation_prompt,
                         ChatTemplate chat_template) {
  const int num_images = static_cast<int>(images.size());
  for (int k = 0; k < num_images; ++k)
    MV_CHECK(images[k].image_tokens > 0, "chat: the prompt of image ", k, " holds no image token");
  size_t placeholders = 0;
  const Message* first_user = nullptr;
  for (const Message& m : messages) {
    MV_CHECK(m.role == "system" || m.role == "user" || m.role == "assistant",
             "chat: unknown role '", m.role, "' (valid roles: system, user, assistant)");
    if (m.role != "user") continue;
    if (!first_user) first_user = &m;
    placeholders += count_placeholders(m.content);
  }
  std::string prefix;
  if (num_images > 0 && placeholders == 0) {
    MV_CHECK(first_user != nullptr, "chat: ", num_images,
             " images but no user message to put them in");
    for (int i = 0; i < num_images; ++i) prefix += "<image>\n";
    placeholders = static_cast<size_t>(num_images);
  }
  MV_CHECK(placeholders == static_cast<size_t>(num_images), "chat: the user messages hold ",
           placeholders, " <image> placeholders but the sample has ", num_images, " images");

  RenderedChat out;
  size_t next_image = 0;
  for (const Message& m : messages) {
    out.text += turn_begin(chat_template, m.role);
    const size_t begin = out.text.size();
    if (m.role == "user")
      append_expanded(out.text, &m == first_user ? prefix + m.content : m.content, images,
                      next_image);
    else if (m.role == "assistant")
      out.text += assistant_body(chat_template, m.content);
    else
      out.text += m.content;
    out.text += turn_end(chat_template);
    if (m.role == "assistant") out.supervised.emplace_back(begin, out.text.size());
  }
  if (generation_prompt) out.text += generation_prompt_text(chat_template);
  return out;
}

EncodedChat encode_chat(const Tokenizer& tok, const std::vector<Message>& messages,
                        const std::vector<ImagePrompt>& images, const std::string& image_token) {
  const RenderedChat chat = render_chat(messages, images, false, tok.chat_template());
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

}  // namespace minivlm
