// Chat templates: a Jinja text, or a tokenizer_config.json / chat_template.json holding one, is
// recognised as a family, and a conversation is rendered in it with the shipped tokenizer.
#include <optional>

#include "core/error.h"
#include "core/json_file.h"
#include "fuzz/fuzz_util.h"
#include "text/chat.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace {
minivlm::Tokenizer& shipped() {
  static minivlm::Tokenizer tok =
      minivlm::Tokenizer::from_file(MINIVLM_SOURCE_DIR "/data/tokenizer/tokenizer.json");
  return tok;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace minivlm;
  const std::string_view text = fuzz::text_of(data, size);
  std::optional<ChatTemplate> family;
  try {
    family = recognize_chat_template(text, "chat_template.jinja");
  } catch (const Error&) {
  }
  try {
    const nlohmann::json j = parse_json(text, "tokenizer_config.json");
    if (j.is_object() && j.contains("chat_template") && j["chat_template"].is_string())
      family = recognize_chat_template(j["chat_template"].get<std::string>(), "json");
  } catch (const Error&) {
  }
  if (!family) return 0;
  Tokenizer& tok = shipped();
  tok.set_chat_template(*family);
  const std::vector<Message> messages = {
      {"system", "Be brief."}, {"user", "<image>\nWhat is this?"}, {"assistant", "A cat."}};
  const std::vector<ImagePrompt> images = {image_run("<|image_pad|>", 3)};
  try {
    (void)encode_chat(tok, messages, images, "<|image_pad|>");
    (void)encode_generation_prompt(tok, {messages[0], messages[1]}, images, "<|image_pad|>");
  } catch (const Error&) {
  }
  return 0;
}
