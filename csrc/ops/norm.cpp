// RMSNorm and LayerNorm over the last dimension, each one fused node: the back-end's forward saves
// per-row statistics, its backward uses them (closed forms in cpu/norm.cpp and kernels/*norm.cuh).
#include "autograd/node.h"
#include "ops/checks.h"
#include "ops/ops.h"

namespace minivlm::ops {

namespace {

Backend& check_norm(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  Backend& be = bias.defined() ? detail::backend_of(op, {&x, &weight, &bias})
                               : detail::backend_of(op, {&x, &weight});
  detail::check_same_dtype(op, x, weight);
  MV_CHECK(x.dim() >= 1, op, ": input must have at least one dimension");
  detail::check_shape(op, "weight", weight, {x.size(-1)});
  if (bias.defined()) {
    detail::check_same_dtype(op, x, bias);
    detail::check_shape(op, "bias", bias, {x.size(-1)});
  }
  return be;
}

}  // namespace

Tensor rmsnorm(const Tensor& x, const Tensor& weight, double eps) {
  Backend& be = check_norm("rmsnorm", x, weight, Tensor());
  const Tensor xc = x.detach().contiguous(), wc = weight.detach().contiguous();
  Backend::Norm saved = be.rmsnorm_forward(xc, wc, eps);
  Tensor out = saved.out;
  saved.out = Tensor();
  return record(out, "rmsnorm", {x, weight}, [xc, wc, saved, &be](const Tensor& g) {
    const auto [dx, dw] = be.rmsnorm_backward(g.contiguous(), xc, wc, saved);
    return std::vector<Tensor>{dx, dw};
  });
}

Tensor layernorm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  MV_CHECK(bias.defined(), "layernorm: bias is required");
  Backend& be = check_norm("layernorm", x, weight, bias);
  const Tensor xc = x.detach().contiguous(), wc = weight.detach().contiguous();
  Backend::Norm saved = be.layernorm_forward(xc, wc, bias.detach().contiguous(), eps);
  Tensor out = saved.out;
  saved.out = Tensor();
  return record(out, "layernorm", {x, weight, bias}, [xc, wc, saved, &be](const Tensor& g) {
    const auto [dx, dw, db] = be.layernorm_backward(g.contiguous(), xc, wc, saved);
    return std::vector<Tensor>{dx, dw, db};
  });
}

}  // namespace minivlm::ops
