// The build without the CUDA back-end (MINIVLM_CUDA=OFF).
#ifndef MINIVLM_HAVE_CUDA
#include "cuda/gpu.h"
#include "cuda/runtime.h"

namespace minivlm {

bool gpu_available() { return false; }
std::string gpu_summary() { return "no GPU: this build has no CUDA back-end (MINIVLM_CUDA=OFF)"; }

namespace cuda {
Runtime* real_runtime() { return nullptr; }
}  // namespace cuda

namespace {
const bool registered = [] {
  register_device_summary(DeviceType::cuda, &gpu_summary);
  return true;
}();
}  // namespace

}  // namespace minivlm
#endif
