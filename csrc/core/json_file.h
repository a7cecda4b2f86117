// JSON input: every JSON a program reads (config, tokenizer, chat template and processor files,
// option files, trainer state, safetensors headers, dataset records) is parsed here, with its
// nesting limited, so a hostile file cannot overflow the stack of the recursive code that later
// copies, compares or prints the value; files are checked to be regular files and not too large
// before they are read (core/file_check.h).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace minivlm {

// Arrays and objects nested deeper than this are refused (real files nest a few levels).
inline constexpr int kMaxJsonDepth = 128;
// JSON files larger than this are refused before they are read (a large tokenizer.json is tens of
// MB).
inline constexpr uint64_t kMaxJsonFileBytes = uint64_t{256} << 20;

// nlohmann::json::parse of `text` with the nesting limited to kMaxJsonDepth: deeper input throws
// nlohmann::json::parse_error, as any other syntax error does, and so does a number too large for
// a double (nlohmann's own parse throws out_of_range for it), so a caller's handling of
// parse_error covers every bad text. `callback` (nlohmann's parser callback, optional) runs after
// the depth check.
nlohmann::json parse_json_limited(std::string_view text,
                                  const nlohmann::json::parser_callback_t& callback = nullptr);

// The same; any failure is a minivlm::Error "<what>: not valid JSON: <reason>".
nlohmann::json parse_json(std::string_view text, const std::string& what);

// A JSON file read whole: a regular file of at most kMaxJsonFileBytes (else an error naming it as
// `what`), parsed with parse_json. Throws minivlm::Error "cannot open <what> PATH: ...",
// "<what> PATH is a FIFO ..., not a regular file" or "PATH: not valid JSON: ...".
nlohmann::json read_json_file(const std::string& path, const std::string& what = "JSON file");

}  // namespace minivlm
