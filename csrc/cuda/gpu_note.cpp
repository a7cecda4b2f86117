#include "core/device.h"
#include "core/error.h"
#include "cuda/gpu.h"

namespace minivlm {

Device compute_device(const std::string& requested) {
  if (requested.empty() || requested == "auto")
    return gpu_available() ? Device{DeviceType::cuda, 0} : kCPU;
  const Device d = parse_device(requested);
  MV_CHECK(d.type != DeviceType::cuda || gpu_available(), "--device ", requested,
           ": no usable GPU (", gpu_summary(),
           "); use --device cpu, or --device cuda-emu to run the CUDA back-end emulated");
  return d;
}

}  // namespace minivlm
