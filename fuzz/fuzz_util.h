// Shared by the libFuzzer targets: each parses one input the way a program reads that file and
// lets only minivlm::Error (a named refusal) pass; any other exception, a signal, a sanitizer
// report, a hang or a memory blow-up is a finding.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace minivlm::fuzz {

inline std::string_view text_of(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A scratch file of this process holding the input (for readers that take a path).
inline const std::string& write_scratch(const uint8_t* data, size_t size, const char* name) {
  // Removed at exit (kept after a crash, beside the artifact libFuzzer writes).
  static const struct Scratch {
    std::string path;
    ~Scratch() { ::unlink(path.c_str()); }
  } scratch{[&] {
    const char* tmp = std::getenv("TMPDIR");
    return std::string(tmp && *tmp ? tmp : "/tmp") + "/minivlm_fuzz_" + name + "_" +
           std::to_string(::getpid());
  }()};
  const std::string& path = scratch.path;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

}  // namespace minivlm::fuzz
