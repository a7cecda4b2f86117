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

}  // namespace

ImagePrompt image_run(const std::string& image_token, int64_t n) {
  ImagePrompt p{{}, n};
  for (int64_t i = 0; i < n; ++i) p.text += image_token;
  return p;
}

RenderedChat render_chat(const std::vector<Message>& messages,
                         const std::vector<ImagePrompt>& images, bool generation_prompt) {
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
    out.text += "<|im_start|>" + m.role + "\n";
    const size_t begin = out.text.size();
    if (m.role == "user")
      append_expanded(out.text, &m == first_user ? prefix + m.content : m.content, images,
                      next_image);
    else
      out.text += m.content;
    out.text += "<|im_end|>\n";
    if (m.role == "assistant") out.supervised.emplace_back(begin, out.text.size());
  }
  if (generation_prompt) out.text += "<|im_start|>assistant\n";
  return out;
}

EncodedChat encode_chat(const Tokenizer& tok, const std::vector<Message>& messages,
                        const std::vector<ImagePrompt>& images, const std::string& image_token) {
  const RenderedChat chat = render_chat(messages, images, false);
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
  std::vector<int32_t> ids = tok.encode(render_chat(messages, images, true).text);
  check_image_tokens(tok, ids, images, image_token);
  return ids;
}

}  // namespace minivlm
