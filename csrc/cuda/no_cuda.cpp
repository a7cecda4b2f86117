// The build without the CUDA back-end (MINIVLM_CUDA=OFF).
#ifndef MINIVLM_HAVE_CUDA
#include "cuda/gpu.h"

namespace minivlm {

bool gpu_available() { return false; }
std::string gpu_summary() { return "no GPU: this build has no CUDA back-end (MINIVLM_CUDA=OFF)"; }

}  // namespace minivlm
#endif
