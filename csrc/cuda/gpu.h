// Whether a real GPU is usable, and the device's registration with the tensor core.
#pragma once
#include <string>

#include "core/device.h"

namespace minivlm {

// True when this build has the CUDA back-end and the driver reports at least one device.
// A machine without a driver or GPU is "no GPU", never an error.
bool gpu_available();
// One line for logs: the device name and memory, or why there is none.
std::string gpu_summary();

// The device a `--device` value names for computing: auto (or empty) is cuda when a GPU is
// usable, else cpu. Throws for a name that does not parse, and for cuda without a usable GPU
// (naming the GPU state and the devices that remain).
Device compute_device(const std::string& requested_device);

}  // namespace minivlm
