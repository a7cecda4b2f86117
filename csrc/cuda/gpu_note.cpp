#include "core/device.h"
#include "cuda/gpu.h"

namespace minivlm {

std::string cpu_fallback_note(const std::string& requested) {
  if (requested.empty() || requested == "auto" || requested == "cpu") return "";
  parse_device(requested);  // an unknown name is an error, not a fallback
  return "note: --device " + requested +
         ": training and inference run on the cpu back-end in this version (" + gpu_summary() + ")";
}

}  // namespace minivlm
