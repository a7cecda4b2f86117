// The OpenAI chat-completions API of `minivlm serve` (SPEC §10): a request body checked field by
// field into a ChatRequest, the reply and stream-chunk JSON, and errors as OpenAI writes them.
//
// Every problem of a request is an ApiError: an HTTP status and OpenAI's error object
// {"error": {"message", "type", "param", "code"}}, the message naming the bad field and value.
// Fields OpenAI defines that the server does not implement are refused when set to anything but
// their neutral value (n > 1, logprobs, tools, penalties), and unknown fields are refused as OpenAI
// refuses them ("Unrecognized request argument supplied: NAME"), so a client never silently gets
// something other than what it asked for.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/image.h"
#include "infer/sampling.h"
#include "text/chat.h"

namespace minivlm::serve {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string param = {}, std::string code = {},
           std::string type = {});
  int status;
  std::string type, param, code;
  nlohmann::json body() const;  // {"error": {...}}
};

// The text of a minivlm::Error for a client: without the "file:line: " it starts with.
std::string client_message(const std::exception& e);

// What a request may ask for (`minivlm serve` options).
struct RequestLimits {
  int64_t max_image_bytes = 20 << 20;  // an image's encoded bytes
  int64_t max_image_pixels = 25'000'000;
  int64_t max_images = 16;  // per request
  std::string allow_files;  // directory of file:// and path image URLs; empty: refused
};

struct ChatRequest {
  std::vector<Message> messages;  // each image part replaced by the model's placeholder
  std::vector<RgbImage> images;   // in placeholder order
  std::optional<int64_t> max_tokens;
  SamplingOptions sampling;  // OpenAI's defaults: temperature 1, top_p 1, no top_k
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool stream = false, include_usage = false, ignore_eos = false;
};

// Parses and checks a chat-completions body. `model` is the served model's name (a request naming
// another is a 404); `image_placeholder` the text an image part becomes (media_placeholder of the
// model's chat template). Throws ApiError.
ChatRequest parse_chat_request(const std::string& body, const std::string& model,
                               const std::string& image_placeholder, const RequestLimits& limits);

// The image of an image_url part's URL: a data:image/...;base64, URL, or a file:// URL or plain
// path inside limits.allow_files. Throws ApiError (400, 413 for an image over the limits).
RgbImage load_image_url(const std::string& url, const RequestLimits& limits);

// Strict base64 (RFC 4648, padding optional, no whitespace); nullopt when `text` is not base64.
std::optional<std::string> decode_base64(std::string_view text);

// JSON text of `j` with invalid UTF-8 replaced (model text may end inside a character).
std::string dump_json(const nlohmann::json& j);

}  // namespace minivlm::serve
