// A table of named implementations (vision towers, projectors, image processors) that each join
// from their own file: a namespace-scope initialiser there calls add(). The owner keeps the table
// as a function-local static, so it exists before the first initialiser uses it. Looking up a name
// that is not there fails with the config key, the name and every valid one.
//
// A file that only registers itself is referenced by nothing else, so the library is linked whole
// (CMakeLists.txt): an archive member nobody references would otherwise be dropped, with it the
// registration.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/error.h"

namespace minivlm {

template <typename Entry>
class Registry {
 public:
  explicit Registry(std::string key) : key_(std::move(key)) {}

  // Returns true, so that `const bool registered = table().add(...);` can run it at start-up.
  bool add(const std::string& name, Entry entry) {
    MV_CHECK(entries_.emplace(name, std::move(entry)).second, key_, " '", name,
             "' is registered twice");
    return true;
  }

  // The entry of `name`; `origin` (a config file, "" for none) starts the message when unknown.
  const Entry& get(const std::string& name, const std::string& origin = "") const {
    const auto it = entries_.find(name);
    if (it != entries_.end()) return it->second;
    std::string valid;
    for (const std::string& n : names()) valid += (valid.empty() ? "" : ", ") + n;
    MV_FAIL(origin, origin.empty() ? "" : ": ", key_, " '", name, "' is unknown (valid: ", valid,
            ")");
  }

  std::vector<std::string> names() const {  // sorted
    std::vector<std::string> out;
    for (const auto& [name, entry] : entries_) out.push_back(name);
    return out;
  }

 private:
  std::string key_;
  std::map<std::string, Entry> entries_;
};

}  // namespace minivlm
