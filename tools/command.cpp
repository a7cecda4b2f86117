#include "tools/command.h"

namespace minivlm::cli {

std::map<std::string, Command>& commands() {
  static std::map<std::string, Command> registry;
  return registry;
}

}  // namespace minivlm::cli
