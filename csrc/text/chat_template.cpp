#include "text/chat_template.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_check.h"
#include "core/json_file.h"

namespace minivlm {
namespace {

namespace fs = std::filesystem;

// Marks are written without whitespace; the template is compared with its whitespace removed.
std::string without_whitespace(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') out += c;
  return out;
}

// The "chat_template" value of a JSON file (null when it has none).
nlohmann::json template_of(const std::string& path) {
  const nlohmann::json j = read_json_file(path, "chat template file");
  MV_CHECK(j.is_object(), path, ": not a JSON object");
  return j.value("chat_template", nlohmann::json());
}

}  // namespace

const std::vector<ChatTemplateFamily>& chat_template_families() {
  static const std::vector<ChatTemplateFamily> families = {
      // Hugging Face's ChatML template: every message, system included, through one loop; no
      // default system prompt, no think block.
      {ChatTemplate::chatml,
       "chatml",
       {R"({{'<|im_start|>'+message['role']+'\n'+message['content']+'<|im_end|>'+'\n'}})",
        R"('<|im_start|>assistant\n')"},
       {"<think>", R"(<|im_start|>system\n)"},
       "<|im_end|>"},
      // MiniMind-3's (Qwen3-style): a think block in every assistant turn, reasoning split out of
      // content at </think>, an empty one in the generation prompt unless open_thinking, and a
      // system turn only from messages[0].
      {ChatTemplate::minimind3,
       "minimind3",
       {R"({%-ifmessages[0].role=='system'%}{{-'<|im_start|>system\n'+messages[0].content+'<|im_end|>\n'}})",
        R"({{-'<|im_start|>'+message.role+'\n'+content+'<|im_end|>'+'\n'}})",
        R"(content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n'))",
        R"(content.split('</think>')[-1].lstrip('\n'))",
        R"({%-iftrue%}{{-'<|im_start|>'+message.role+'\n<think>\n'+reasoning_content.strip('\n')+'\n</think>\n\n'+content.lstrip('\n')}})",
        R"({{-'<|im_start|>assistant\n'}})", "open_thinking", R"({{-'<think>\n\n</think>\n\n'}})"},
       {},
       "<|im_end|>"},
      // SmolVLM's: "<|im_start|>" once, then "{Role}:" / "{Role}: " + content +
      // "<end_of_utterance>\n" per message; the image-only SmolVLM-Instruct template and
      // transformers' DEFAULT_CHAT_TEMPLATE (with <video>, SmolVLM2's) both hold these.
      // SmolVLM-Base's
      // ends turns with <|endoftext|> instead and so is not this family.
      {ChatTemplate::smolvlm,
       "smolvlm",
       {R"(<|im_start|>{%formessageinmessages%}{{message['role']|capitalize}})",
        R"({%ifmessage['content'][0]['type']=='image'%}{{':'}}{%else%}{{':'}}{%endif%})",
        R"({%forlineinmessage['content']%}{%ifline['type']=='text'%}{{line['text']}}{%elifline['type']=='image'%}{{'<image>'}})",
        R"(<end_of_utterance>{%endfor%}{%ifadd_generation_prompt%}{{'Assistant:'}}{%endif%})"},
       {},
       "<end_of_utterance>"},
  };
  return families;
}

const ChatTemplateFamily& chat_template_family(ChatTemplate t) {
  for (const ChatTemplateFamily& f : chat_template_families())
    if (f.id == t) return f;
  MV_FAIL("chat template ", static_cast<int>(t), " has no family entry");
}

std::string chat_template_names() {
  std::string s;
  for (const ChatTemplateFamily& f : chat_template_families()) {
    if (!s.empty()) s += ", ";
    s += f.name;
  }
  return s;
}

ChatTemplate recognize_chat_template(std::string_view jinja, const std::string& origin) {
  const std::string text = without_whitespace(jinja);
  const ChatTemplateFamily* found = nullptr;
  for (const ChatTemplateFamily& f : chat_template_families()) {
    bool match = true;
    for (std::string_view m : f.marks) match = match && text.find(m) != std::string::npos;
    for (std::string_view x : f.exclusions) match = match && text.find(x) == std::string::npos;
    if (!match) continue;
    MV_CHECK(found == nullptr, origin, ": the chat template fits both the ", found->name,
             " and the ", f.name, " family");
    found = &f;
  }
  MV_CHECK(found != nullptr, origin,
           ": the chat template is not one that minivlm can render (it does not run Jinja; "
           "supported families: ",
           chat_template_names(), ")");
  return found->id;
}

ChatTemplate chat_template_beside(const std::string& tokenizer_json_path) {
  const fs::path dir = fs::path(tokenizer_json_path).parent_path();
  // Newer Hugging Face tokenizers keep the template in its own file, which then takes precedence.
  const std::string jinja = (dir / "chat_template.jinja").string();
  if (fs::exists(jinja))
    return recognize_chat_template(
        read_regular_file(jinja, "chat template file", kMaxJsonFileBytes), jinja);
  // Processors (SmolVLM's) keep it in chat_template.json.
  const std::string processor = (dir / "chat_template.json").string();
  if (fs::exists(processor)) {
    const nlohmann::json t = template_of(processor);
    MV_CHECK(t.is_string(), processor, ": chat_template must be a string",
             t.is_null() ? std::string(" (it is missing)") : ", not " + std::string(t.type_name()));
    return recognize_chat_template(t.get<std::string>(), processor);
  }
  const std::string config = (dir / "tokenizer_config.json").string();
  if (!fs::exists(config)) return ChatTemplate::chatml;
  const nlohmann::json t = template_of(config);
  if (t.is_null()) return ChatTemplate::chatml;
  MV_CHECK(t.is_string(), config, ": chat_template must be a string, not ", t.type_name());
  return recognize_chat_template(t.get<std::string>(), config);
}

}  // namespace minivlm
