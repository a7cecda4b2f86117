#include "core/device.h"

#include <array>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace minivlm {

std::string Device::str() const {
  switch (type) {
    case DeviceType::cpu:
      return "cpu";
    case DeviceType::cuda:
      return index == 0 ? "cuda" : "cuda:" + std::to_string(index);
    case DeviceType::cuda_emu:
      return "cuda-emu";
  }
  return "?";
}

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device{DeviceType::cpu, 0};
  if (s == "cuda-emu") return Device{DeviceType::cuda_emu, 0};
  if (s == "cuda") return Device{DeviceType::cuda, 0};
  if (s.rfind("cuda:", 0) == 0) return Device{DeviceType::cuda, std::atoi(s.c_str() + 5)};
  MV_FAIL("unknown device '", s, "' (valid: cpu, cuda, cuda:N, cuda-emu)");
}

namespace {

// 64-byte aligned host memory: full cache lines for SIMD loops and BLAS.
struct CpuAllocator final : DeviceAllocator {
  void* allocate(size_t nbytes) override {
    const size_t rounded = (nbytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    MV_CHECK(p != nullptr, "out of host memory allocating ", nbytes, " bytes");
    return p;
  }
  void deallocate(void* p) override { std::free(p); }
  void copy_from_host(void* d, const void* s, size_t n) override { std::memcpy(d, s, n); }
  void copy_to_host(void* d, const void* s, size_t n) override { std::memcpy(d, s, n); }
  void copy_on_device(void* d, const void* s, size_t n) override { std::memcpy(d, s, n); }
};

std::array<DeviceAllocator*, 3>& registry() {
  static CpuAllocator cpu;
  static std::array<DeviceAllocator*, 3> r{&cpu, nullptr, nullptr};
  return r;
}

std::array<std::string (*)(), 3>& summaries() {
  static std::array<std::string (*)(), 3> s{};
  return s;
}

}  // namespace

void register_allocator(DeviceType type, DeviceAllocator* alloc) {
  registry()[static_cast<size_t>(type)] = alloc;
}

bool device_available(DeviceType type) { return registry()[static_cast<size_t>(type)] != nullptr; }

void register_device_summary(DeviceType type, std::string (*summary)()) {
  summaries()[static_cast<size_t>(type)] = summary;
}

std::string device_summary(DeviceType type) {
  if (auto* f = summaries()[static_cast<size_t>(type)]) return f();
  return device_available(type) ? "available" : "not in this build";
}

Device compute_device(const std::string& requested) {
  if (requested.empty() || requested == "auto")
    return device_available(DeviceType::cuda) ? Device{DeviceType::cuda, 0} : kCPU;
  const Device d = parse_device(requested);
  if (device_available(d.type)) return d;
  std::string others;
  for (DeviceType t : {DeviceType::cpu, DeviceType::cuda, DeviceType::cuda_emu})
    if (device_available(t))
      others += (others.empty() ? "--device " : " or --device ") + Device{t, 0}.str();
  MV_FAIL("--device ", requested, ": not usable (", device_summary(d.type), "); use ", others,
          " (cuda-emu: the CUDA back-end emulated on the CPU)");
}

DeviceAllocator& allocator_for(Device d) {
  DeviceAllocator* a = registry()[static_cast<size_t>(d.type)];
  MV_CHECK(a != nullptr, "device ", d.str(), " is not available in this build or on this machine");
  return *a;
}

}  // namespace minivlm
