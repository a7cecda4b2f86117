// Subcommands of the `minivlm` tool binary. Each tools/cmd_*.cpp registers one with
// MINIVLM_COMMAND(name, "one-line help") { ...body using `args`... return exit_code; }.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

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

// --key value / --flag parsing shared by subcommands: unknown options are an error listing the
// valid ones; "--max-steps" and "--max_steps" are the same option.
class Args {
 public:
  // `options` maps option names (without --) to whether they take a value; `repeatable` options may
  // appear more than once.
  Args(const std::vector<std::string>& argv, const std::map<std::string, bool>& options,
       const std::string& command);
  bool has(const std::string& key) const;
  std::string get(const std::string& key) const;  // throws if absent (names the option)
  std::string get(const std::string& key, const std::string& fallback) const;
  std::vector<std::string> get_all(const std::string& key) const;
  int get_int(const std::string& key, int fallback) const;
  double get_double(const std::string& key, double fallback) const;

 private:
  std::multimap<std::string, std::string> values_;
  std::string command_;
};

std::string normalize_option(const std::string& key);  // dashes → underscores

}  // namespace minivlm::cli

#define MINIVLM_CMD_CONCAT2(a, b) a##b
#define MINIVLM_CMD_CONCAT(a, b) MINIVLM_CMD_CONCAT2(a, b)
#define MINIVLM_COMMAND(name, help)                                                       \
  static int MINIVLM_CMD_CONCAT(cmd_fn_, __LINE__)(const std::vector<std::string>& args); \
  static ::minivlm::cli::Registrar MINIVLM_CMD_CONCAT(cmd_reg_, __LINE__)(                \
      name, help, MINIVLM_CMD_CONCAT(cmd_fn_, __LINE__));                                 \
  static int MINIVLM_CMD_CONCAT(cmd_fn_, __LINE__)(const std::vector<std::string>& args)
