#include "core/args.h"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "core/error.h"

namespace minivlm::cli {

std::string normalize_option(const std::string& key) {
  std::string k = key;
  for (char& c : k)
    if (c == '-') c = '_';
  return k;
}

Args::Args(const std::vector<std::string>& argv, const std::map<std::string, bool>& options,
           const std::string& command)
    : command_(command) {
  std::map<std::string, bool> norm;
  for (const auto& [k, v] : options) norm[normalize_option(k)] = v;
  auto valid = [&] {
    std::string s;
    for (const auto& [k, v] : options) {
      s += s.empty() ? "--" : ", --";
      s += k;
    }
    return s;
  };
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--help" || a == "-h") {
      std::string usage = "usage: " + command_;
      for (const auto& [k, takes_value] : options)
        usage += " [--" + k + (takes_value ? " VALUE]" : "]");
      std::printf("%s\n", usage.c_str());
      std::exit(0);
    }
    MV_CHECK(a.rfind("--", 0) == 0, command_, ": unexpected argument '", a,
             "' (valid options: ", valid(), ")");
    const std::string body = a.substr(2);
    const size_t eq = body.find('=');
    const std::string key = normalize_option(body.substr(0, eq));
    MV_CHECK(norm.count(key), command_, ": unknown option --", key, " (valid options: ", valid(),
             ")");
    std::string value = "1";
    if (eq != std::string::npos) {
      value.assign(body, eq + 1, std::string::npos);
    } else if (norm[key]) {
      MV_CHECK(i + 1 < argv.size(), command_, ": option --", key, " needs a value");
      value = argv[++i];
    }
    values_.emplace(key, value);
  }
}

bool Args::has(const std::string& key) const { return values_.count(normalize_option(key)) > 0; }

std::string Args::get(const std::string& key) const {
  auto it = values_.find(normalize_option(key));
  MV_CHECK(it != values_.end(), command_, ": missing required option --", key);
  return it->second;
}

std::string Args::get(const std::string& key, const std::string& fallback) const {
  auto it = values_.find(normalize_option(key));
  return it == values_.end() ? fallback : it->second;
}

std::vector<std::string> Args::get_all(const std::string& key) const {
  std::vector<std::string> out;
  auto [b, e] = values_.equal_range(normalize_option(key));
  for (auto it = b; it != e; ++it) out.push_back(it->second);
  return out;
}

int Args::get_int(const std::string& key, int fallback) const {
  if (!has(key)) return fallback;
  const std::string v = get(key);
  try {
    size_t pos = 0;
    int r = std::stoi(v, &pos);
    if (pos == v.size()) return r;
  } catch (const std::exception&) {
  }
  MV_FAIL(command_, ": option --", key, " expects an integer, got '", v, "'");
}

double Args::get_double(const std::string& key, double fallback) const {
  if (!has(key)) return fallback;
  const std::string v = get(key);
  try {
    size_t pos = 0;
    double r = std::stod(v, &pos);
    if (pos == v.size()) return r;
  } catch (const std::exception&) {
  }
  MV_FAIL(command_, ": option --", key, " expects a number, got '", v, "'");
}

}  // namespace minivlm::cli
