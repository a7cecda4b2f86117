#include "core/json_file.h"

#include "core/error.h"
#include "core/file_check.h"

namespace minivlm {

namespace {

struct TooDeep {};

}  // namespace

nlohmann::json parse_json_limited(std::string_view text,
                                  const nlohmann::json::parser_callback_t& callback) {
  using nlohmann::json;
  // The depth the callback gets is that of the enclosing containers: the top-level value is 0.
  const json::parser_callback_t limited = [&callback](int depth, json::parse_event_t event,
                                                      json& parsed) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth)
      throw TooDeep{};
    return callback ? callback(depth, event, parsed) : true;
  };
  try {
    return json::parse(text.begin(), text.end(), limited);
  } catch (const json::out_of_range& e) {
    // A number beyond double ("1e999") is out_of_range to nlohmann, and escaped callers that catch
    // parse_error: it is a syntax error of the text like any other.
    const std::string what = e.what();
    const size_t tag = what.find("] ");
    throw json::parse_error::create(101, 0, tag == std::string::npos ? what : what.substr(tag + 2),
                                    nullptr);
  } catch (const TooDeep&) {
    throw json::parse_error::create(101, 0,
                                    "syntax error: arrays and objects nested more than " +
                                        std::to_string(kMaxJsonDepth) + " deep",
                                    nullptr);
  }
}

nlohmann::json parse_json(std::string_view text, const std::string& what) {
  try {
    return parse_json_limited(text);
  } catch (const nlohmann::json::exception& e) {
    MV_FAIL(what, ": not valid JSON: ", e.what());
  }
}

nlohmann::json read_json_file(const std::string& path, const std::string& what) {
  return parse_json(read_regular_file(path, what, kMaxJsonFileBytes), path);
}

}  // namespace minivlm
