#include "infer/serve/api.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string_view>

#include "core/error.h"
#include "core/json_file.h"

namespace minivlm::serve {

namespace {

using nlohmann::json;

const char* json_type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

[[noreturn]] void bad_type(const std::string& param, const json& v, const char* expected) {
  throw ApiError(400,
                 "Invalid type for '" + param + "': expected " + expected + ", but got " +
                     json_type_name(v) + ".",
                 param, "invalid_type");
}

[[noreturn]] void bad_value(const std::string& param, const std::string& why) {
  throw ApiError(400, "Invalid value for '" + param + "': " + why, param, "invalid_value");
}

// obj[key], which must be there ("<at>.<key>" names it).
const json& require(const json& obj, const std::string& key, const std::string& at) {
  const std::string param = at.empty() ? key : at + "." + key;
  if (!obj.contains(key))
    throw ApiError(400, "Missing required parameter: '" + param + "'.", param,
                   "missing_required_parameter");
  return obj[key];
}

// Refuses any key of obj not in `allowed`, as OpenAI does.
void only_keys(const json& obj, std::initializer_list<std::string_view> allowed,
               const std::string& at) {
  for (const auto& [key, v] : obj.items())
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      const std::string param = at.empty() ? key : at + "." + key;
      throw ApiError(400, "Unrecognized request argument supplied: " + param, param,
                     "unknown_parameter");
    }
}

double number(const json& v, const std::string& param, double lo, double hi) {
  if (!v.is_number()) bad_type(param, v, "a number");
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi))
    bad_value(param, "expected a number from " + json(lo).dump() + " to " + json(hi).dump() +
                         ", got " + v.dump() + ".");
  return x;
}

int64_t integer(const json& v, const std::string& param, int64_t lo, int64_t hi) {
  if (!v.is_number_integer() && !v.is_number_unsigned()) bad_type(param, v, "an integer");
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
    bad_value(param, "expected at most " + std::to_string(hi) + ", got " + v.dump() + ".");
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    bad_value(param, "expected an integer from " + std::to_string(lo) + " to " +
                         std::to_string(hi) + ", got " + v.dump() + ".");
  return x;
}

bool boolean(const json& v, const std::string& param) {
  if (!v.is_boolean()) bad_type(param, v, "a boolean");
  return v.get<bool>();
}

const std::string& string(const json& v, const std::string& param) {
  if (!v.is_string()) bad_type(param, v, "a string");
  return v.get_ref<const std::string&>();
}

// Text that the chat template would read as an image or video placeholder.
void check_no_placeholder(const std::string& text, const std::string& param) {
  for (const char* p : {"<image>", "<video>"})
    if (text.find(p) != std::string::npos)
      bad_value(param, std::string("the text holds '") + p +
                           "', which this model reads as a media placeholder; send images as "
                           "image_url parts.");
}

void decode_message(const json& m, size_t i, const std::string& placeholder,
                    const RequestLimits& limits, ChatRequest& out) {
  const std::string at = "messages[" + std::to_string(i) + "]";
  if (!m.is_object()) bad_type(at, m, "an object");
  only_keys(m, {"role", "content", "name"}, at);
  std::string role = string(require(m, "role", at), at + ".role");
  if (role == "developer") role = "system";
  if (role != "system" && role != "user" && role != "assistant")
    bad_value(at + ".role", "'" + role +
                                "' is not supported; expected 'system', 'developer', 'user' or "
                                "'assistant'.");
  if (m.contains("name")) string(m["name"], at + ".name");
  const json& c = require(m, "content", at);
  Message msg{role, {}};
  if (c.is_string()) {
    msg.content = c.get<std::string>();
    check_no_placeholder(msg.content, at + ".content");
  } else if (c.is_array()) {
    for (size_t k = 0; k < c.size(); ++k) {
      const json& part = c[k];
      const std::string pat = at + ".content[" + std::to_string(k) + "]";
      if (!part.is_object()) bad_type(pat, part, "an object");
      const std::string& type = string(require(part, "type", pat), pat + ".type");
      if (type == "text") {
        only_keys(part, {"type", "text"}, pat);
        const std::string& text = string(require(part, "text", pat), pat + ".text");
        check_no_placeholder(text, pat + ".text");
        msg.content += text;
      } else if (type == "image_url") {
        if (role != "user")
          bad_value(pat + ".type", "image parts are only supported in user messages.");
        only_keys(part, {"type", "image_url"}, pat);
        const json& iu = require(part, "image_url", pat);
        if (!iu.is_object()) bad_type(pat + ".image_url", iu, "an object");
        only_keys(iu, {"url", "detail"}, pat + ".image_url");
        if (iu.contains("detail")) {
          const std::string& d = string(iu["detail"], pat + ".image_url.detail");
          if (d != "auto" && d != "low" && d != "high")
            bad_value(pat + ".image_url.detail", "expected 'auto', 'low' or 'high'.");
        }
        const std::string& url =
            string(require(iu, "url", pat + ".image_url"), pat + ".image_url.url");
        if (static_cast<int64_t>(out.images.size()) >= limits.max_images)
          throw ApiError(413,
                         "Too many images: this server takes at most " +
                             std::to_string(limits.max_images) + " per request.",
                         pat, "too_many_images");
        try {
          out.images.push_back(load_image_url(url, limits));
        } catch (ApiError& e) {
          e.param = pat + ".image_url.url";
          throw;
        }
        msg.content += placeholder;
      } else {
        bad_value(pat + ".type",
                  "'" + type + "' is not supported; expected 'text' or 'image_url'.");
      }
    }
  } else {
    bad_type(at + ".content", c, "a string or an array of content parts");
  }
  out.messages.push_back(std::move(msg));
}

}  // namespace

ApiError::ApiError(int status_, const std::string& message, std::string param_, std::string code_,
                   std::string type_)
    : std::runtime_error(message),
      status(status_),
      type(std::move(type_)),
      param(std::move(param_)),
      code(std::move(code_)) {
  if (type.empty())
    type = status == 429 || status == 503 ? "server_overloaded"
           : status == 408                ? "timeout"
           : status >= 500                ? "server_error"
                                          : "invalid_request_error";
}

json ApiError::body() const {
  return {{"error",
           {{"message", what()},
            {"type", type},
            {"param", param.empty() ? json() : json(param)},
            {"code", code.empty() ? json() : json(code)}}}};
}

std::string client_message(const std::exception& e) {
  const std::string s = e.what();
  // "path/file.cpp:123: message" → "message"
  const size_t colon = s.find(": ");
  if (colon != std::string::npos) {
    const size_t line = s.rfind(':', colon - 1);
    if (line != std::string::npos && line + 1 < colon &&
        std::all_of(s.begin() + static_cast<std::ptrdiff_t>(line) + 1,
                    s.begin() + static_cast<std::ptrdiff_t>(colon),
                    [](char ch) { return ch >= '0' && ch <= '9'; }) &&
        s.find(' ') > line)
      return s.substr(colon + 2);
  }
  return s;
}

std::optional<std::string> decode_base64(std::string_view text) {
  static const std::array<int8_t, 256> table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(alphabet[i])] = static_cast<int8_t>(i);
    return t;
  }();
  if (!text.empty() && text.back() == '=') {  // padding completes the last group of four
    if (text.size() % 4 != 0) return std::nullopt;
    text.remove_suffix(text.size() >= 2 && text[text.size() - 2] == '=' ? 2 : 1);
  }
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (const char ch : text) {
    const int8_t v = table[static_cast<uint8_t>(ch)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

RgbImage load_image_url(const std::string& url, const RequestLimits& limits) {
  std::string bytes, what;
  if (url.rfind("data:", 0) == 0) {
    const size_t comma = url.find(',');
    const std::string header = url.substr(5, comma == std::string::npos ? 0 : comma - 5);
    if (comma == std::string::npos || header.rfind("image/", 0) != 0 || header.size() < 7 ||
        header.substr(header.size() - 7) != ";base64")
      throw ApiError(400,
                     "Invalid image URL: a data URL must be 'data:image/<type>;base64,<data>'.",
                     "image_url", "invalid_image_url");
    const std::string_view data = std::string_view(url).substr(comma + 1);
    if (static_cast<int64_t>(data.size() / 4 * 3) > limits.max_image_bytes + 3)
      throw ApiError(413,
                     "Image too large: over the limit of " +
                         std::to_string(limits.max_image_bytes) + " bytes.",
                     "image_url", "image_too_large");
    std::optional<std::string> decoded = decode_base64(data);
    if (!decoded)
      throw ApiError(400, "Invalid image URL: the data after 'base64,' is not valid base64.",
                     "image_url", "invalid_base64");
    bytes = std::move(*decoded);
    what = "(" + header.substr(0, header.size() - 7) + " data URL)";
  } else if (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0) {
    throw ApiError(400,
                   "Invalid image URL: this server does not fetch http(s) URLs; send the image as "
                   "a data:image/...;base64, URL.",
                   "image_url", "invalid_image_url");
  } else {
    std::string path = url.rfind("file://", 0) == 0 ? url.substr(7) : url;
    if (limits.allow_files.empty())
      throw ApiError(400,
                     "Invalid image URL: file paths are refused (the server was started without "
                     "--allow-files); send the image as a data:image/...;base64, URL.",
                     "image_url", "invalid_image_url");
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path root = fs::weakly_canonical(limits.allow_files, ec);
    const fs::path file = fs::weakly_canonical(path, ec);
    const auto rel = file.lexically_relative(root);
    if (ec || path.empty() || rel.empty() || *rel.begin() == ".." || !fs::is_regular_file(file))
      throw ApiError(400,
                     "Invalid image URL: '" + path +
                         "' is not a file under the allowed "
                         "directory.",
                     "image_url", "invalid_image_url");
    if (static_cast<int64_t>(fs::file_size(file, ec)) > limits.max_image_bytes)
      throw ApiError(413,
                     "Image too large: over the limit of " +
                         std::to_string(limits.max_image_bytes) + " bytes.",
                     "image_url", "image_too_large");
    std::ifstream f(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    what = file.string();
  }
  if (static_cast<int64_t>(bytes.size()) > limits.max_image_bytes)
    throw ApiError(413,
                   "Image too large: " + std::to_string(bytes.size()) +
                       " bytes, over the limit of " + std::to_string(limits.max_image_bytes) + ".",
                   "image_url", "image_too_large");
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  try {
    const auto [w, h] = image_header_size(p, bytes.size(), what);
    if (static_cast<int64_t>(w) * h > limits.max_image_pixels)
      throw ApiError(413,
                     "Image too large: " + std::to_string(w) + "x" + std::to_string(h) +
                         " pixels, over the limit of " + std::to_string(limits.max_image_pixels) +
                         ".",
                     "image_url", "image_too_large");
    return decode_rgb_image(p, bytes.size(), what);
  } catch (const ApiError&) {
    throw;
  } catch (const std::exception& e) {
    throw ApiError(400, "Invalid image: " + client_message(e), "image_url", "invalid_image");
  }
}

ChatRequest parse_chat_request(const std::string& body, const std::string& model,
                               const std::string& image_placeholder, const RequestLimits& limits) {
  json j;
  try {
    j = parse_json_limited(body);  // nesting at most kMaxJsonDepth: the stack stays bounded
  } catch (const json::exception& e) {
    throw ApiError(400, std::string("The body is not valid JSON: ") + e.what(), {}, "invalid_json");
  }
  if (!j.is_object()) bad_type("body", j, "a JSON object");
  only_keys(j,
            {"model",
             "messages",
             "max_tokens",
             "max_completion_tokens",
             "temperature",
             "top_p",
             "top_k",
             "seed",
             "stop",
             "n",
             "stream",
             "stream_options",
             "user",
             "metadata",
             "store",
             "ignore_eos",
             "logprobs",
             "frequency_penalty",
             "presence_penalty",
             "repetition_penalty"},
            "");
  if (j.contains("model")) {
    const std::string& m = string(j["model"], "model");
    if (m != model)
      throw ApiError(404,
                     "The model '" + m + "' does not exist; this server serves '" + model + "'.",
                     "model", "model_not_found");
  }
  ChatRequest r;
  r.sampling.temperature = 1.0;
  r.sampling.top_p = 1.0;
  r.sampling.top_k = 0;
  const json& ms = require(j, "messages", "");
  if (!ms.is_array()) bad_type("messages", ms, "an array");
  if (ms.empty()) bad_value("messages", "expected at least one message.");
  for (size_t i = 0; i < ms.size(); ++i) decode_message(ms[i], i, image_placeholder, limits, r);
  if (std::none_of(r.messages.begin(), r.messages.end(),
                   [](const Message& m) { return m.role == "user"; }))
    bad_value("messages", "expected at least one user message.");

  for (const char* key : {"max_tokens", "max_completion_tokens"})
    if (j.contains(key) && !j[key].is_null()) r.max_tokens = integer(j[key], key, 1, 1 << 30);
  if (j.contains("temperature") && !j["temperature"].is_null())
    r.sampling.temperature = number(j["temperature"], "temperature", 0, 2);
  if (j.contains("top_p") && !j["top_p"].is_null())
    r.sampling.top_p = number(j["top_p"], "top_p", 0, 1);
  if (j.contains("top_k") && !j["top_k"].is_null())
    r.sampling.top_k = integer(j["top_k"], "top_k", 0, 1 << 30);
  if (j.contains("repetition_penalty") && !j["repetition_penalty"].is_null())
    r.sampling.repetition_penalty = number(j["repetition_penalty"], "repetition_penalty", 0.01, 10);
  r.sampling.greedy = r.sampling.temperature <= 0;
  if (j.contains("seed") && !j["seed"].is_null()) {
    const json& s = j["seed"];
    if (!s.is_number_integer() && !s.is_number_unsigned()) bad_type("seed", s, "an integer");
    r.seed = s.is_number_unsigned() ? s.get<uint64_t>() : static_cast<uint64_t>(s.get<int64_t>());
  }
  if (j.contains("stop") && !j["stop"].is_null()) {
    const json& s = j["stop"];
    if (s.is_string()) {
      r.stop.push_back(s.get<std::string>());
    } else if (s.is_array()) {
      if (s.size() > 4) bad_value("stop", "expected at most 4 sequences.");
      for (size_t i = 0; i < s.size(); ++i)
        r.stop.push_back(string(s[i], "stop[" + std::to_string(i) + "]"));
    } else {
      bad_type("stop", s, "a string or an array of strings");
    }
    for (const std::string& s1 : r.stop)
      if (s1.empty()) bad_value("stop", "stop sequences must not be empty.");
  }
  if (j.contains("n") && !j["n"].is_null() && integer(j["n"], "n", 1, 128) != 1)
    bad_value("n", "this server returns one choice per request (n = 1).");
  if (j.contains("stream") && !j["stream"].is_null()) r.stream = boolean(j["stream"], "stream");
  if (j.contains("stream_options") && !j["stream_options"].is_null()) {
    const json& so = j["stream_options"];
    if (!so.is_object()) bad_type("stream_options", so, "an object");
    only_keys(so, {"include_usage"}, "stream_options");
    if (so.contains("include_usage"))
      r.include_usage = boolean(so["include_usage"], "stream_options.include_usage");
    if (!r.stream) bad_value("stream_options", "only allowed when 'stream' is true.");
  }
  if (j.contains("ignore_eos") && !j["ignore_eos"].is_null())
    r.ignore_eos = boolean(j["ignore_eos"], "ignore_eos");
  if (j.contains("logprobs") && !j["logprobs"].is_null() && boolean(j["logprobs"], "logprobs"))
    bad_value("logprobs", "log probabilities are not supported.");
  for (const char* key : {"frequency_penalty", "presence_penalty"})
    if (j.contains(key) && !j[key].is_null() && number(j[key], key, -2, 2) != 0)
      bad_value(key, "only 0 is supported (use repetition_penalty).");
  if (j.contains("user") && !j["user"].is_null()) string(j["user"], "user");
  if (j.contains("store") && !j["store"].is_null()) boolean(j["store"], "store");
  if (j.contains("metadata") && !j["metadata"].is_null() && !j["metadata"].is_object())
    bad_type("metadata", j["metadata"], "an object");
  return r;
}

std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace minivlm::serve
