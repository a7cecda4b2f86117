// matmul and linear on CBLAS GEMM (the GEMM calls are planned by ops/matmul_plan.h).
#include "autograd/node.h"
#include "cuda/ops.h"
#include "cpu/gemm.h"
#include "ops/dispatch.h"
#include "ops/matmul_plan.h"
#include "ops/ops.h"

namespace minivlm::ops {

using detail::check_cpu;
using detail::dispatch_float;

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (a.device().is_cuda_backend()) return cuda::matmul(a, b);
  check_cpu("matmul", a);
  check_cpu("matmul", b);
  const MatmulPlan p = plan_matmul(a, b);
  Tensor out = Tensor::empty(p.out_shape, a.dtype());
  dispatch_float("matmul", a, [&](auto zero) {
    using T = decltype(zero);
    const T* pa = static_cast<const T*>(p.a.t.storage()->data);
    const T* pb = static_cast<const T*>(p.b.t.storage()->data);
    T* po = out.data<T>();
    for (int64_t i = 0; i < p.batches(); ++i) {
      cpu::gemm<T>(p.a.trans, p.b.trans, p.m, p.n, p.k, T(1), pa + p.a_offset(i), p.a.ld,
                   pb + p.b_offset(i), p.b.ld, T(0), po + i * p.m * p.n, p.n);
    }
  });
  const Tensor ad = a.detach(), bd = b.detach();
  const Shape sa = a.shape(), sb = b.shape();
  return record(out, "matmul", {a, b}, [=](const Tensor& g) {
    return std::vector<Tensor>{reduce_to_shape(matmul(g, bd.transpose(-1, -2)), sa),
                               reduce_to_shape(matmul(ad.transpose(-1, -2), g), sb)};
  });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  MV_CHECK(weight.dim() == 2, "linear: weight must be [out, in], got ", weight.desc());
  MV_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input ", shape_str(x.shape()),
           " does not match weight ", shape_str(weight.shape()), " (in features ", weight.size(1),
           ")");
  Shape out_shape = x.shape();
  out_shape.back() = weight.size(0);
  Tensor y = matmul(x.reshape({-1, weight.size(1)}), weight.transpose(0, 1));
  if (bias.defined()) {
    detail::check_shape("linear", "bias", bias, {weight.size(0)});
    y = add(y, bias);
  }
  return y.reshape(out_shape);
}

}  // namespace minivlm::ops
