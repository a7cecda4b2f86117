// The real CUDA runtime: device discovery and the `cuda` device's allocator (over runtime_gpu.cpp).
// cuBLAS and NCCL versions are reported here too, so a build with MINIVLM_CUDA links all three
// libraries.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>

#include "core/device.h"
#include "core/error.h"
#include "cuda/backend.h"
#include "cuda/gpu.h"
#include "cuda/runtime.h"

namespace minivlm {

namespace {

void cuda_check(cudaError_t e, const char* what) {
  MV_CHECK(e == cudaSuccess, what, " failed: ", cudaGetErrorString(e));
}

// cudaGetDeviceCount returns an error (e.g. cudaErrorInsufficientDriver) on machines without a
// driver: that, like zero devices, means "no GPU".
int device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

const bool registered = [] {
  register_device_summary(DeviceType::cuda, &gpu_summary);
  if (device_count() > 0) {
    static cuda::RuntimeAllocator alloc(*cuda::real_runtime());
    register_allocator(DeviceType::cuda, &alloc);
    register_backend(DeviceType::cuda, &cuda::backend_of_type(DeviceType::cuda));
  }
  return true;
}();

}  // namespace

bool gpu_available() { return device_count() > 0; }

std::string gpu_summary() {
  int cublas_version = 0;
  cublasGetProperty(MAJOR_VERSION, &cublas_version);
  int nccl_version = 0;
  ncclGetVersion(&nccl_version);
  char libs[96];
  std::snprintf(libs, sizeof libs, "cuBLAS %d, NCCL %d", cublas_version, nccl_version);
  if (device_count() == 0)
    return std::string("no GPU: the CUDA driver reports no device (") + libs + ")";
  cudaDeviceProp prop{};
  cuda_check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  char buf[640];
  std::snprintf(buf, sizeof buf, "%d GPU(s); device 0: %s, %.1f GiB, sm_%d%d (%s)", device_count(),
                prop.name, static_cast<double>(prop.totalGlobalMem) / (1 << 30), prop.major,
                prop.minor, libs);
  return buf;
}

}  // namespace minivlm
