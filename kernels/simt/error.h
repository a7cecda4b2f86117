// simt::Error: what the emulator throws on the host when a kernel breaks a CUDA rule.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace simt {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

}  // namespace detail
}  // namespace simt
