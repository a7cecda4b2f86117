// The planned product (core/matmul_plan.h) as one cpu::gemm call per batch matrix.
#include "cpu/backend.h"
#include "cpu/gemm.h"

namespace minivlm::cpu {

Tensor CpuBackend::matmul(const MatmulPlan& p) {
  Tensor out = Tensor::empty(p.out_shape, p.a.t.dtype());
  dispatch_float("matmul", out, [&](auto zero) {
    using T = decltype(zero);
    const T* pa = static_cast<const T*>(p.a.t.storage()->data);
    const T* pb = static_cast<const T*>(p.b.t.storage()->data);
    T* po = out.data<T>();
    for (int64_t i = 0; i < p.batches(); ++i) {
      gemm<T>(p.a.trans, p.b.trans, p.m, p.n, p.k, T(1), pa + p.a_offset(i), p.a.ld,
              pb + p.b_offset(i), p.b.ld, T(0), po + i * p.m * p.n, p.n);
    }
  });
  return out;
}

}  // namespace minivlm::cpu
