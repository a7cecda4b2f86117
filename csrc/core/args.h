// Command-line options of the form --key value / --flag, shared by the binaries and subcommands.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace minivlm::cli {

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
