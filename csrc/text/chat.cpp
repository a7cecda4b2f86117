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

void append_expanded(std::string& out, const std::string& content, const std::string& image_run) {
  size_t from = 0;
  for (size_t at = content.find(kPlaceholder); at != std::string::npos;
       at = content.find(kPlaceholder, from)) {
    out.append(content, from, at - from);
    out += image_run;
    from = at + kPlaceholder.size();
  }
  out.append(content, from, std::string::npos);
}

// The image tokens of one image, and a check that the format can express `num_images` of them.
std::string image_run(const ChatFormat& format, int num_images) {
  MV_CHECK(num_images >= 0, "chat: negative image count ", num_images);
  if (num_images == 0) return {};
  MV_CHECK(format.tokens_per_image > 0, "chat: ", num_images, " images but tokens_per_image is ",
           format.tokens_per_image);
  std::string run;
  for (int i = 0; i < format.tokens_per_image; ++i) run += format.image_token;
  return run;
}

void check_image_tokens(const Tokenizer& tok, const std::vector<int32_t>& ids, int num_images,
                        const ChatFormat& format) {
  const int64_t expected = static_cast<int64_t>(num_images) * format.tokens_per_image;
  const std::optional<int32_t> image_id = tok.find_token(format.image_token);
  if (!image_id) {
    MV_CHECK(expected == 0, "chat: the tokenizer has no image token ", format.image_token);
    return;
  }
  const auto found = std::count(ids.begin(), ids.end(), *image_id);
  MV_CHECK(found == expected, "chat: the conversation holds ", found, " image tokens ",
           format.image_token, " but its ", num_images, " images need ", expected,
           " (does a message spell the image token itself?)");
}

}  // namespace

RenderedChat render_chat(const std::vector<Message>& messages, int num_images,
                         const ChatFormat& format, bool generation_prompt) {
  size_t placeholders = 0;
  const Message* first_user = nullptr;
  for (const Message& m : messages) {
    MV_CHECK(m.role == "system" || m.role == "user" || m.role == "assistant",
             "chat: unknown role '", m.role, "' (valid roles: system, user, assistant)");
    if (m.role != "user") continue;
    if (!first_user) first_user = &m;
    placeholders += count_placeholders(m.content);
  }
  const std::string run = image_run(format, num_images);
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
  for (const Message& m : messages) {
    out.text += "<|im_start|>" + m.role + "\n";
    const size_t begin = out.text.size();
    if (m.role == "user")
      append_expanded(out.text, &m == first_user ? prefix + m.content : m.content, run);
    else
      out.text += m.content;
    out.text += "<|im_end|>\n";
    if (m.role == "assistant") out.supervised.emplace_back(begin, out.text.size());
  }
  if (generation_prompt) out.text += "<|im_start|>assistant\n";
  return out;
}

EncodedChat encode_chat(const Tokenizer& tok, const std::vector<Message>& messages, int num_images,
                        const ChatFormat& format) {
  const RenderedChat chat = render_chat(messages, num_images, format, false);
  Tokenizer::Encoding enc = tok.encode_with_offsets(chat.text);
  check_image_tokens(tok, enc.ids, num_images, format);
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
                                              const std::vector<Message>& messages, int num_images,
                                              const ChatFormat& format) {
  std::vector<int32_t> ids = tok.encode(render_chat(messages, num_images, format, true).text);
  check_image_tokens(tok, ids, num_images, format);
  return ids;
}

}  // namespace minivlm
