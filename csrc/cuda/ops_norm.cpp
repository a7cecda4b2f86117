// RMSNorm and LayerNorm on the CUDA back-end: one fused node each, forward saving fp32 rstd (and
// mean), backward through the kernels' deterministic two-step weight-gradient reduction.
#include "autograd/node.h"
#include "cuda/backend.h"
#include "cuda/ops.h"

namespace minivlm::cuda {

namespace {

struct NormSaved {
  Tensor x;     // [N, C] contiguous
  Tensor w;     // [C]
  Tensor mean;  // [N] f32 (LayerNorm only)
  Tensor rstd;  // [N] f32
};

void check_norm(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_device(op, weight, x.device());
  MV_CHECK(x.dtype() == weight.dtype(), op, ": dtype mismatch between ", x.desc(), " and ",
           weight.desc());
  MV_CHECK(x.dim() >= 1, op, ": input must have at least one dimension");
  MV_CHECK(weight.shape() == Shape{x.size(-1)}, op, ": weight has shape ",
           shape_str(weight.shape()), ", expected [", x.size(-1), "]");
  if (bias.defined()) {
    check_device(op, bias, x.device());
    MV_CHECK(bias.shape() == weight.shape(), op, ": bias has shape ", shape_str(bias.shape()),
             ", expected [", x.size(-1), "]");
  }
}

}  // namespace

Tensor rmsnorm(const Tensor& x, const Tensor& weight, double eps) {
  check_norm("rmsnorm", x, weight, Tensor());
  const Device dev = x.device();
  const int64_t C = x.size(-1), N = C == 0 ? 0 : x.numel() / C;
  NormSaved s{contiguous_input(x).reshape({N, C}), contiguous_input(weight), Tensor(),
              device_empty({N}, DType::f32, dev)};
  Tensor out = device_empty(x.shape(), x.dtype(), dev);
  dispatch_storage("rmsnorm", x, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, rmsnorm_forward, ptr<T>(out), ptr<float>(s.rstd), ptr<const T>(s.x),
              ptr<const T>(s.w), static_cast<int>(N), static_cast<int>(C), static_cast<float>(eps),
              stream_for(dev));
  });
  return record(out, "rmsnorm", {x, weight}, [s, dev](const Tensor& g) {
    const Tensor gc = contiguous_input(g);
    const int N = static_cast<int>(s.x.size(0)), C = static_cast<int>(s.x.size(1));
    Tensor dx = device_empty(g.shape(), s.x.dtype(), dev);
    Tensor dw = device_empty(s.w.shape(), s.w.dtype(), dev);
    Tensor scratch = device_empty(
        {static_cast<int64_t>(kernels::rmsnorm_backward_scratch_floats(N, C))}, DType::f32, dev);
    dispatch_storage("rmsnorm", s.x, [&](auto zero) {
      using T = decltype(zero);
      MV_KERNEL(dev, rmsnorm_backward, ptr<T>(dx), ptr<T>(dw), ptr<float>(scratch),
                ptr<const T>(gc), ptr<const T>(s.x), ptr<const T>(s.w), ptr<const float>(s.rstd), N,
                C, stream_for(dev));
    });
    return std::vector<Tensor>{dx, dw};
  });
}

Tensor layernorm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  MV_CHECK(bias.defined(), "layernorm: bias is required");
  check_norm("layernorm", x, weight, bias);
  const Device dev = x.device();
  const int64_t C = x.size(-1), N = C == 0 ? 0 : x.numel() / C;
  NormSaved s{contiguous_input(x).reshape({N, C}), contiguous_input(weight),
              device_empty({N}, DType::f32, dev), device_empty({N}, DType::f32, dev)};
  const Tensor bc = contiguous_input(bias);
  Tensor out = device_empty(x.shape(), x.dtype(), dev);
  dispatch_storage("layernorm", x, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, layernorm_forward, ptr<T>(out), ptr<float>(s.mean), ptr<float>(s.rstd),
              ptr<const T>(s.x), ptr<const T>(s.w), ptr<const T>(bc), static_cast<int>(N),
              static_cast<int>(C), static_cast<float>(eps), stream_for(dev));
  });
  return record(out, "layernorm", {x, weight, bias}, [s, dev](const Tensor& g) {
    const Tensor gc = contiguous_input(g);
    const int N = static_cast<int>(s.x.size(0)), C = static_cast<int>(s.x.size(1));
    Tensor dx = device_empty(g.shape(), s.x.dtype(), dev);
    Tensor dw = device_empty(s.w.shape(), s.w.dtype(), dev);
    Tensor db = device_empty(s.w.shape(), s.w.dtype(), dev);
    Tensor scratch = device_empty(
        {static_cast<int64_t>(kernels::layernorm_backward_scratch_floats(N, C))}, DType::f32, dev);
    dispatch_storage("layernorm", s.x, [&](auto zero) {
      using T = decltype(zero);
      MV_KERNEL(dev, layernorm_backward, ptr<T>(dx), ptr<T>(dw), ptr<T>(db), ptr<float>(scratch),
                ptr<const T>(gc), ptr<const T>(s.x), ptr<const T>(s.w), ptr<const float>(s.mean),
                ptr<const float>(s.rstd), N, C, stream_for(dev));
    });
    return std::vector<Tensor>{dx, dw, db};
  });
}

}  // namespace minivlm::cuda
