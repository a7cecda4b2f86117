// matmul and linear: the GEMM calls are planned once (core/matmul_plan.h) for every back-end.
#include "autograd/node.h"
#include "ops/checks.h"
#include "ops/ops.h"

namespace minivlm::ops {

Tensor matmul(const Tensor& a, const Tensor& b) {
  Backend& be = detail::backend_of("matmul", {&a, &b});
  Tensor out = be.matmul(plan_matmul(a, b));
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
  if (bias.defined()) {
    detail::check_shape("linear", "bias", bias, {weight.size(0)});
    detail::check_same_dtype("linear", weight, bias);
  }
  Shape out_shape = x.shape();
  out_shape.back() = weight.size(0);
  const int64_t in = weight.size(1);
  Tensor y;
  {
    NoGradGuard no_grad;
    y = matmul(x.reshape({-1, in}), weight.transpose(0, 1));
    if (bias.defined()) detail::backend_of("linear", {&y, &bias}).add_bias_(y, bias.contiguous());
  }
  // One node for the whole layer: the weight's gradient is computed as gᵀ·x, already laid out
  // [out, in] like the weight (through matmul's backward of the transposed view it would come out
  // [in, out] and then be copied element by element into the weight's layout), and the bias is
  // added in place instead of into a second output tensor.
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
