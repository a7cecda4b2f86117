// Subcommands of the `minivlm` tool binary. Each tools/cmd_*.cpp registers one with
// MINIVLM_COMMAND(name, "one-line help") { ...body using `args`... return exit_code; }.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/args.h"

namespace minivlm::cli {

using CommandFn = std::function<int(const std::vector<std::string>& args)>;

struct Command {
  std::string help;
  CommandFn run;
};

std::map<std::string, Command>& commands();

struct Registrar {
  Registrar(const std::string& name, const std::string& help, CommandFn fn) {
    commands()[name] = Command{help, std::move(fn)};
  }
};

}  // namespace minivlm::cli

#define MINIVLM_CMD_CONCAT2(a, b) a##b
#define MINIVLM_CMD_CONCAT(a, b) MINIVLM_CMD_CONCAT2(a, b)
#define MINIVLM_COMMAND(name, help)                                                       \
  static int MINIVLM_CMD_CONCAT(cmd_fn_, __LINE__)(const std::vector<std::string>& args); \
  static ::minivlm::cli::Registrar MINIVLM_CMD_CONCAT(cmd_reg_, __LINE__)(                \
      name, help, MINIVLM_CMD_CONCAT(cmd_fn_, __LINE__));                                 \
  static int MINIVLM_CMD_CONCAT(cmd_fn_, __LINE__)(const std::vector<std::string>& args)
