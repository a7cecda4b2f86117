// minivlm info: what this build and machine can run.
#include <cstdio>

#include "core/backend.h"
#include "tools/command.h"

namespace minivlm {

MINIVLM_COMMAND("info", "show the build's back-ends and whether a GPU is usable") {
  cli::Args a(args, {}, "minivlm info");
  for (DeviceType t : {DeviceType::cpu, DeviceType::cuda, DeviceType::cuda_emu})
    std::printf("%s: %s\n", Device{t, 0}.str().c_str(), device_summary(t).c_str());
  return 0;
}

}  // namespace minivlm
