// Whether a real GPU is usable, and one line on its state (registered as the `cuda` device's
// summary, core/device.h).
#pragma once
#include <string>

#include "core/device.h"

namespace minivlm {

// True when this build has the CUDA back-end and the driver reports at least one device.
// A machine without a driver or GPU is "no GPU", never an error.
bool gpu_available();
// One line for logs: the device name and memory, or why there is none.
std::string gpu_summary();

}  // namespace minivlm
