// Chat templates: which chat format a tokenizer's model was trained with.
//
// A Hugging Face tokenizer keeps its chat template, a Jinja program, as "chat_template" in the
// tokenizer_config.json beside its tokenizer.json. We do not run Jinja. Each template family we
// support is rendered by C++ code (text/chat.cpp), and a template is recognised as a family by
// text that only that family's templates hold: every one of the family's marks must occur in the
// template (compared with all whitespace removed, so line breaks and indentation do not matter) and
// none of its exclusions. A template that is no family's is an error, never a silent fallback: its
// conversations would be rendered in a format the model was not trained on. No
// tokenizer_config.json, or one without a chat_template, is ChatML (SPEC §3), the format of the
// earlier MiniMind models.
//
// Families (a new one is one more enum value, one more entry of chat_template_families() and its
// rendering in text/chat.cpp):
//   chatml     <|im_start|>{role}\n{content}<|im_end|>\n; generation prompt <|im_start|>assistant\n
//   minimind3  MiniMind-3's: as chatml, but an assistant turn is
//              <|im_start|>assistant\n<think>\n{reasoning}\n</think>\n\n{content}<|im_end|>\n and
//              the generation prompt (thinking off) <|im_start|>assistant\n<think>\n\n</think>\n\n
//   smolvlm    SmolVLM's (SmolVLM-Instruct, SmolVLM2; transformers' SmolVLM DEFAULT_CHAT_TEMPLATE):
//              <|im_start|> once, then per message {Role}:{content}<end_of_utterance>\n with the
//              role capitalised and ": " after it (":" alone when the content starts with an
//              image); generation prompt Assistant:; <end_of_utterance> ends a turn (text/chat.h)
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace minivlm {

enum class ChatTemplate : uint8_t { chatml, minimind3, smolvlm };

struct ChatTemplateFamily {
  ChatTemplate id;
  std::string_view name;
  std::vector<std::string_view> marks;       // all occur in the family's templates
  std::vector<std::string_view> exclusions;  // none occurs
  std::string_view end_of_turn;              // the token that ends a reply (generation stops at it)
};

// Every supported family, in a fixed order.
const std::vector<ChatTemplateFamily>& chat_template_families();
const ChatTemplateFamily& chat_template_family(ChatTemplate t);
// "chatml, minimind3, smolvlm": for messages.
std::string chat_template_names();

// The family of a Jinja chat template's text. Throws naming `origin` (the file it came from) and
// the supported families when it is none of them.
ChatTemplate recognize_chat_template(std::string_view jinja, const std::string& origin);

// The chat template of the tokenizer at `tokenizer_json_path`: the first of, in the same directory,
// chat_template.jinja (the newer Hugging Face file), chat_template.json's "chat_template" (where
// SmolVLM and other processors keep it) and tokenizer_config.json's "chat_template"; chatml when
// there is none of them or the config has no chat_template. Throws naming the file when it cannot
// be read or parsed, or its template is unrecognised.
ChatTemplate chat_template_beside(const std::string& tokenizer_json_path);

}  // namespace minivlm
