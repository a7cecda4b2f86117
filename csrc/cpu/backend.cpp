#include "cpu/backend.h"

namespace minivlm::cpu {

// bf16 is the registered subclass's (cpu/bf16_backend.h).
bool CpuBackend::computes(DType dtype) const { return dtype == DType::f32 || dtype == DType::f64; }

}  // namespace minivlm::cpu
