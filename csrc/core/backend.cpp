#include "core/backend.h"

#include <array>

namespace minivlm {

namespace {

constexpr size_t kDeviceTypes = 3;  // DeviceType's values

std::array<Backend*, kDeviceTypes>& registry() {
  static std::array<Backend*, kDeviceTypes> r{};
  return r;
}

}  // namespace

void register_backend(DeviceType type, Backend* backend) {
  registry()[static_cast<size_t>(type)] = backend;
}

Backend& backend_for(Device device) {
  Backend* b = registry()[static_cast<size_t>(device.type)];
  MV_CHECK(b != nullptr, "no back-end computes on ", device.str(),
           " in this build or on this machine (", device_summary(device.type), ")");
  return *b;
}

std::vector<DeviceType> registered_backends() {
  std::vector<DeviceType> out;
  for (size_t i = 0; i < kDeviceTypes; ++i)
    if (registry()[i] != nullptr) out.push_back(static_cast<DeviceType>(i));
  return out;
}

}  // namespace minivlm
