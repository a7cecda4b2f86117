// minivlm render --data FILE.jsonl --tokenizer FILE [--tokens-per-image N]: the token ids and label
// mask of each sample of a SPEC §4.1 JSONL file, one JSON line {"ids", "labels"} per sample. Images
// are only counted from the "image" field (a path, a comma-separated list or a JSON list).
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "core/file_check.h"
#include "core/json_file.h"
#include "text/chat.h"
#include "tools/command.h"

namespace minivlm {
namespace {

using nlohmann::json;

int count_images(const json& image) {
  if (image.is_null()) return 0;
  if (image.is_array()) return static_cast<int>(image.size());
  MV_CHECK(image.is_string(), "\"image\" must be a string or a list, not ", image.type_name());
  int n = 0;
  const std::string s = image.get<std::string>();
  size_t from = 0;
  while (from <= s.size()) {
    size_t comma = s.find(',', from);
    if (comma == std::string::npos) comma = s.size();
    if (s.find_first_not_of(" \t", from) < comma) ++n;
    from = comma + 1;
  }
  return n;
}

std::vector<Message> parse_messages(const json& sample) {
  MV_CHECK(sample.is_object() && sample.contains("conversations"),
           "a sample needs a \"conversations\" list");
  std::vector<Message> messages;
  for (const json& m : sample.at("conversations"))
    messages.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  return messages;
}

}  // namespace

MINIVLM_COMMAND("render", "chat-format a JSONL data file: token ids and label mask per sample") {
  cli::Args a(args, {{"data", true}, {"tokenizer", true}, {"tokens-per-image", true}}, "render");
  const Tokenizer tok = Tokenizer::from_file(a.get("tokenizer"));
  const std::string image_token = "<|image_pad|>";
  const ImagePrompt image = image_run(image_token, a.get_int("tokens-per-image", 49));
  const std::string path = a.get("data");
  require_regular_file(path, "data file");
  std::ifstream in(path);
  MV_CHECK(in, "cannot open ", path);
  std::string line;
  for (size_t lineno = 1; std::getline(in, line); ++lineno) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    EncodedChat chat;
    try {
      const json sample = parse_json_limited(line);
      const std::vector<ImagePrompt> images(count_images(sample.value("image", json())), image);
      chat = encode_chat(tok, parse_messages(sample), images, image_token);
    } catch (const std::exception& e) {
      MV_FAIL(path, ":", lineno, ": ", e.what());
    }
    const std::string out = json{{"ids", chat.ids}, {"labels", chat.labels}}.dump();
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fputc('\n', stdout);
  }
  return 0;
}

}  // namespace minivlm
