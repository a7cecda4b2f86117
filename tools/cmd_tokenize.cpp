// minivlm tokenize --tokenizer FILE: reads one JSON string per stdin line, prints the token ids of
// each as one JSON array per line.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "core/json_file.h"
#include "text/tokenizer.h"
#include "tools/command.h"

namespace minivlm {

MINIVLM_COMMAND("tokenize", "encode JSON strings from stdin (one per line) into token id arrays") {
  cli::Args a(args, {{"tokenizer", true}}, "tokenize");
  const Tokenizer tok = Tokenizer::from_file(a.get("tokenizer"));
  std::string line;
  for (size_t lineno = 1; std::getline(std::cin, line); ++lineno) {
    if (line.empty()) continue;
    nlohmann::json text;
    try {
      text = parse_json_limited(line);
    } catch (const nlohmann::json::exception& e) {
      MV_FAIL("stdin line ", lineno, ": not JSON: ", e.what());
    }
    MV_CHECK(text.is_string(), "stdin line ", lineno, ": expected a JSON string, got ",
             text.type_name());
    const std::string out = nlohmann::json(tok.encode(text.get<std::string>())).dump();
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fputc('\n', stdout);
  }
  return 0;
}

}  // namespace minivlm
