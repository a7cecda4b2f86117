// What the CUDA back-end's host launchers share: the stream and runtime of a device, storage-type
// dispatch, and the choice of kernel build by device (kernels::gpu on `cuda`, kernels::emu on
// `cuda-emu`), so one host function serves both devices.
#pragma once
#include "core/tensor.h"
#include "cuda/runtime.h"
#include "kernels/kernels.h"

namespace minivlm::cuda {

using kernels::bf16;

// Every launch goes to the default stream: host code sees one in-order queue per device.
inline cudaStream_t stream_for(Device) { return nullptr; }

// Calls f(T{}) with T = float or bf16 for the tensor's dtype; other dtypes are an error naming op.
template <typename F>
decltype(auto) dispatch_storage(const char* op, const Tensor& t, F&& f) {
  switch (t.dtype()) {
    case DType::f32:
      return f(float{});
    case DType::bf16:
      return f(bf16{});
    default:
      MV_FAIL(op, ": unsupported dtype ", dtype_name(t.dtype()), " on ", t.device().str(),
              " (the CUDA back-end stores f32 or bf16)");
  }
}

template <typename T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

// Checks that t is defined and on `device` (every tensor of one op lives on one device).
void check_device(const char* op, const Tensor& t, Device device);
// A detached contiguous copy (or the tensor itself when already contiguous).
Tensor contiguous_input(const Tensor& t);
// Device memory for an op's output or scratch on the device of `like`.
Tensor device_empty(const Shape& shape, DType dtype, Device device);

}  // namespace minivlm::cuda

// MV_KERNEL(device, launcher, args...): kernels/ launcher of the device's build.
#if MINIVLM_HAVE_CUDA
#define MV_KERNEL(device, fn, ...)                                                         \
  ((device).type == ::minivlm::DeviceType::cuda ? ::minivlm::kernels::gpu::fn(__VA_ARGS__) \
                                                : ::minivlm::kernels::emu::fn(__VA_ARGS__))
#else
// Without the CUDA back-end the only CUDA-backend device that exists is cuda-emu.
#define MV_KERNEL(device, fn, ...) ((void)(device), ::minivlm::kernels::emu::fn(__VA_ARGS__))
#endif
