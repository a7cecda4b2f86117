// The planned product (core/matmul_plan.h) on the runtime's GEMM: cuBLAS on `cuda`, the CPU GEMM on
// `cuda-emu`. Operands whose last two dimensions are row-major or transposed views go as they are.
// Each GEMM is priced for the cost model (cuda/cost_model.h) when a recording is active.
#include "cuda/backend.h"

namespace minivlm::cuda {

Tensor CudaBackend::matmul(const MatmulPlan& p) {
  const Device dev = p.a.t.device();
  const DType dtype = p.a.t.dtype();
  Tensor out = Tensor::empty(p.out_shape, dtype, dev);
  dispatch_storage("matmul", out, [](auto) {});  // f32 or bf16 only
  const int64_t esize = static_cast<int64_t>(dtype_size(dtype));
  Runtime& rt = runtime_for(dev);
  for (int64_t i = 0; i < p.batches(); ++i) {
    Runtime::Gemm g;
    g.dtype = dtype;
    g.trans_a = p.a.trans;
    g.trans_b = p.b.trans;
    g.m = p.m;
    g.n = p.n;
    g.k = p.k;
    g.a = static_cast<const char*>(p.a.t.storage()->data) + p.a_offset(i) * esize;
    g.lda = p.a.ld;
    g.b = static_cast<const char*>(p.b.t.storage()->data) + p.b_offset(i) * esize;
    g.ldb = p.b.ld;
    g.c = static_cast<char*>(out.raw_data()) + i * p.m * p.n * esize;
    g.ldc = p.n;
    if (cost_mode() != CostMode::off) [[unlikely]] {
      record_cost("gemm", kernels::cost::gemm(g.m, g.n, g.k, static_cast<std::size_t>(esize),
                                              g.beta != 0.0f));
      if (cost_mode() == CostMode::shape_only) continue;
    }
    rt.gemm(g, stream_for(dev));
  }
  return out;
}

}  // namespace minivlm::cuda
