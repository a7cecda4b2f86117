// minivlm info: what this build and machine can run.
#include <cstdio>

#include "core/device.h"
#include "cuda/gpu.h"
#include "tools/command.h"

namespace minivlm {

MINIVLM_COMMAND("info", "show the build's back-ends and whether a GPU is usable") {
  cli::Args a(args, {}, "minivlm info");
  std::printf("cpu: available\n");
  std::printf("cuda: %s\n", gpu_summary().c_str());
  std::printf("cuda-emu: %s\n",
              device_available(DeviceType::cuda_emu) ? "available" : "not in this build");
  return 0;
}

}  // namespace minivlm
