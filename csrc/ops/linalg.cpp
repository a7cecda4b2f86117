// matmul and linear on cpu/gemm.h (the GEMM calls are planned by ops/matmul_plan.h).
#include "autograd/node.h"
#include "cuda/ops.h"
#include "cpu/gemm.h"
#include "ops/dispatch.h"
#include "ops/matmul_plan.h"
#include "ops/ops.h"

namespace minivlm::ops {

using detail::check_cpu;
using detail::dispatch_float;

namespace {

// y [rows, n] += bias [n], row by row.
void add_rows_inplace(Tensor& y, const Tensor& bias) {
  detail::check_same_dtype("linear", y, bias);
  const Tensor bc = bias.contiguous();
  const int64_t n = y.size(1), rows = y.size(0);
  dispatch_float("linear", y, [&](auto zero) {
    using T = decltype(zero);
    const T* pb = bc.data<T>();
    T* py = y.data<T>();
#pragma omp parallel for if (rows * n > 32768) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) py[r * n + i] += pb[i];
    }
  });
}

}  // namespace

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
  if (bias.defined()) detail::check_shape("linear", "bias", bias, {weight.size(0)});
  Shape out_shape = x.shape();
  out_shape.back() = weight.size(0);
  const int64_t in = weight.size(1);
  Tensor y;
  {
    NoGradGuard no_grad;
    y = matmul(x.reshape({-1, in}), weight.transpose(0, 1));
    if (bias.defined()) {
      if (y.device().is_cpu())
        add_rows_inplace(y, bias);
      else
        y = add(y, bias);
    }
  }
  // One node for the whole layer: the weight's gradient is computed as gᵀ·x, already laid out
  // [out, in] like the weight (through matmul's backward of the transposed view it came out
  // [in, out] and was then copied element by element into the weight's layout), and the bias is
  // added in place on the CPU instead of into a second output tensor.
  const Tensor xd = x.detach().reshape({-1, in}), wd = weight.detach();
  const bool need_x = x.requires_grad(), need_w = weight.requires_grad(),
             need_b = bias.defined() && bias.requires_grad();
  std::vector<Tensor> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  y = record(y, "linear", inputs,
             [xd, wd, need_x, need_w, need_b, xs = x.shape()](const Tensor& g) {
               std::vector<Tensor> grads{need_x ? matmul(g, wd).reshape(xs) : Tensor(),
                                         need_w ? matmul(g.transpose(0, 1), xd) : Tensor()};
               if (need_b) grads.push_back(sum(g, 0, false));
               return grads;
             });
  return y.reshape(out_shape);
}

}  // namespace minivlm::ops
