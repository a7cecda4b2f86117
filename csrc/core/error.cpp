#include "core/error.h"

#include <cstring>

namespace minivlm::detail {

void throw_error(const char* file, int line, const std::string& msg) {
  const char* base = std::strrchr(file, '/');
  throw Error(str_cat(base ? base + 1 : file, ":", line, ": ", msg));
}

}  // namespace minivlm::detail
