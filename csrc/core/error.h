// Errors: one exception type whose message carries file:line and the text (a "HINT: ..." sentence
// in the text where a way out is known).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace minivlm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
[[noreturn]] void throw_error(const char* file, int line, const std::string& msg);

inline void append_all(std::ostringstream&) {}
template <typename T, typename... Rest>
void append_all(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  append_all(os, rest...);
}
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  append_all(os, args...);
  return os.str();
}
}  // namespace detail

}  // namespace minivlm

// MV_CHECK(cond, msg parts...): throws minivlm::Error("file:line: msg") when cond is false.
#define MV_CHECK(cond, ...)                                                                        \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      ::minivlm::detail::throw_error(__FILE__, __LINE__, ::minivlm::detail::str_cat(__VA_ARGS__)); \
  } while (0)

#define MV_FAIL(...) \
  ::minivlm::detail::throw_error(__FILE__, __LINE__, ::minivlm::detail::str_cat(__VA_ARGS__))
