#include "cpu/backend.h"

namespace minivlm::cpu {

bool CpuBackend::computes(DType dtype) const { return dtype == DType::f32 || dtype == DType::f64; }

namespace {

const bool registered = [] {
  static CpuBackend cpu;
  register_backend(DeviceType::cpu, &cpu);
  return true;
}();

}  // namespace

}  // namespace minivlm::cpu
