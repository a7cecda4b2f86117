// Point-wise activations, SwiGLU and softmax: one node each, whose backward reads the saved input
// (the output for softmax).
#include "autograd/node.h"
#include "ops/checks.h"
#include "ops/ops.h"

namespace minivlm::ops {

namespace {

Tensor activation(Activation a, const char* op, const Tensor& x) {
  Backend& be = detail::backend_of(op, {&x});
  const Tensor xc = x.detach().contiguous();
  Tensor out = be.activation_forward(a, xc);
  return record(out, op, {x}, [a, xc, &be](const Tensor& g) {
    return std::vector<Tensor>{be.activation_backward(a, g.contiguous(), xc)};
  });
}

}  // namespace

Tensor silu(const Tensor& x) { return activation(Activation::silu, "silu", x); }
Tensor gelu(const Tensor& x) { return activation(Activation::gelu, "gelu", x); }
Tensor gelu_tanh(const Tensor& x) { return activation(Activation::gelu_tanh, "gelu_tanh", x); }
Tensor quick_gelu(const Tensor& x) { return activation(Activation::quick_gelu, "quick_gelu", x); }

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  Backend& be = detail::backend_of("swiglu", {&gate, &up});
  detail::check_same_dtype("swiglu", gate, up);
  detail::check_shape("swiglu", "up", up, gate.shape());
  const Tensor gc = gate.detach().contiguous(), uc = up.detach().contiguous();
  Tensor out = be.swiglu_forward(gc, uc);
  return record(out, "swiglu", {gate, up}, [gc, uc, &be](const Tensor& g) {
    const auto [dgate, dup] = be.swiglu_backward(g.contiguous(), gc, uc);
    return std::vector<Tensor>{dgate, dup};
  });
}

Tensor softmax(const Tensor& x) {
  Backend& be = detail::backend_of("softmax", {&x});
  Tensor out = be.softmax_forward(x.detach().contiguous());
  const Tensor y = out.detach();
  return record(out, "softmax", {x}, [y, &be](const Tensor& g) {
    return std::vector<Tensor>{be.softmax_backward(g.contiguous(), y)};
  });
}

}  // namespace minivlm::ops
