// matmul on the runtime's GEMM (cuBLAS on `cuda`, the CPU GEMM on `cuda-emu`). As on the CPU,
// operands whose last two dimensions are row-major or transposed views go to GEMM as they are.
#include "autograd/node.h"
#include "cuda/backend.h"
#include "cuda/ops.h"
#include "ops/matmul_plan.h"
#include "ops/ops.h"

namespace minivlm::cuda {

Tensor matmul(const Tensor& a, const Tensor& b) {
  const Device dev = a.device();
  check_device("matmul", b, dev);
  const ops::MatmulPlan p = ops::plan_matmul(a, b);
  const int64_t m = p.m, n = p.n, k = p.k;
  Tensor out = device_empty(p.out_shape, a.dtype(), dev);
  dispatch_storage("matmul", a, [](auto) {});  // f32 or bf16 only
  const size_t esize = dtype_size(a.dtype());
  Runtime& rt = runtime_for(dev);
  for (int64_t i = 0; i < p.batches(); ++i) {
    Runtime::Gemm g;
    g.dtype = a.dtype();
    g.trans_a = p.a.trans;
    g.trans_b = p.b.trans;
    g.m = m;
    g.n = n;
    g.k = k;
    g.a = static_cast<const char*>(p.a.t.storage()->data) +
          p.a_offset(i) * static_cast<int64_t>(esize);
    g.lda = p.a.ld;
    g.b = static_cast<const char*>(p.b.t.storage()->data) +
          p.b_offset(i) * static_cast<int64_t>(esize);
    g.ldb = p.b.ld;
    g.c = static_cast<char*>(out.raw_data()) + i * m * n * static_cast<int64_t>(esize);
    g.ldc = n;
    rt.gemm(g, stream_for(dev));
  }
  const Tensor ad = a.detach(), bd = b.detach();
  const Shape sa = a.shape(), sb = b.shape();
  return record(out, "matmul", {a, b}, [=](const Tensor& g) {
    return std::vector<Tensor>{ops::reduce_to_shape(ops::matmul(g, bd.transpose(-1, -2)), sa),
                               ops::reduce_to_shape(ops::matmul(ad.transpose(-1, -2), g), sb)};
  });
}

}  // namespace minivlm::cuda
