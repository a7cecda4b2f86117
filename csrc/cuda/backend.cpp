#include "cuda/backend.h"

namespace minivlm::cuda {

bool CudaBackend::computes(DType dtype) const {
  return dtype == DType::f32 || dtype == DType::bf16;
}

Backend& backend_of_type(DeviceType type) {
  static CudaBackend emu("cuda-emu"), gpu("cuda");
  return type == DeviceType::cuda ? gpu : emu;
}

namespace {

// cuda-emu exists in every build; the real runtime registers `cuda` where it finds a GPU.
const bool registered = [] {
  register_backend(DeviceType::cuda_emu, &backend_of_type(DeviceType::cuda_emu));
  register_device_copy(DeviceType::cuda_emu, &device_copy);
  register_device_copy(DeviceType::cuda, &device_copy);
  return true;
}();

}  // namespace

}  // namespace minivlm::cuda
