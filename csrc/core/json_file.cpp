#include "core/json_file.h"

#include <fstream>

#include "core/error.h"

namespace minivlm {

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  MV_CHECK(f.good(), "cannot open ", path);
  try {
    return nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    MV_FAIL(path, ": not valid JSON: ", e.what());
  }
}

}  // namespace minivlm
