// Devices and the allocator registry. The core knows only "bytes on some device"; back-ends
// register an allocator (and copy routines) for their device type, so core code never includes CUDA
// headers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace minivlm {

enum class DeviceType : uint8_t { cpu, cuda, cuda_emu };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;
  bool operator==(const Device&) const = default;
  bool is_cpu() const { return type == DeviceType::cpu; }
  // cuda and cuda-emu run the same CUDA back-end host code and kernels.
  bool is_cuda_backend() const { return type != DeviceType::cpu; }
  std::string str() const;
};

inline const Device kCPU{};

Device parse_device(const std::string& s);  // "cpu", "cuda", "cuda:1", "cuda-emu"

// Memory on a device: allocate/free, fill from/to host, device-to-device copy.
struct DeviceAllocator {
  virtual ~DeviceAllocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* p) = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void copy_on_device(void* dst, const void* src, size_t nbytes) = 0;
};

// Registered by each back-end at static-init time; throws a clear error for unregistered devices.
void register_allocator(DeviceType type, DeviceAllocator* alloc);
DeviceAllocator& allocator_for(Device d);
bool device_available(DeviceType type);

}  // namespace minivlm
