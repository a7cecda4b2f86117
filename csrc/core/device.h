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
  std::string str() const;
};

inline const Device kCPU{};

Device parse_device(const std::string& s);  // "cpu", "cuda", "cuda:1", "cuda-emu"

// The device a `--device` value names for computing: auto (or empty) is cuda when it is available,
// else cpu. Throws for a name that does not parse and for a device that is not available, naming
// its state (device_summary) and the devices that are.
Device compute_device(const std::string& requested_device);

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
// Whether tensors can live on devices of `type` in this build on this machine.
bool device_available(DeviceType type);

// One line on a device type's state for messages and `minivlm info`: what it is, or why it is
// absent ("no GPU: the CUDA driver reports no device"). Registered by back-ends that can be absent
// at run time; others read "available" or "not in this build".
void register_device_summary(DeviceType type, std::string (*summary)());
std::string device_summary(DeviceType type);

}  // namespace minivlm
