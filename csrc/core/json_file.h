// A JSON file read whole: every reader of config, tokenizer-config and processor files uses it, so
// each names the file in the same words when it cannot be opened or parsed.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace minivlm {

// Throws minivlm::Error "cannot open PATH" or "PATH: not valid JSON: ...".
nlohmann::json read_json_file(const std::string& path);

}  // namespace minivlm
