// The optimizer's device side: the global gradient norm (deterministic fp32 partial sums) and the
// AdamW update with fp32 moments and optional fp32 master weights.
#include "cuda/backend.h"
#include "cuda/ops.h"

namespace minivlm::cuda {

double grad_norm(const std::vector<Tensor>& grads) {
  if (grads.empty()) return 0.0;
  const Device dev = grads[0].device();
  int64_t slots = 0;
  for (const Tensor& g : grads) {
    check_device("grad_norm", g, dev);
    slots += kernels::global_norm_partial_count(static_cast<std::size_t>(g.numel()));
  }
  Tensor partials = device_empty({std::max<int64_t>(slots, 1)}, DType::f32, dev);
  Tensor out = device_empty({2}, DType::f32, dev);  // norm, clipping factor (unused here)
  int count = 0;
  for (const Tensor& g : grads) {
    const Tensor gc = contiguous_input(g);
    dispatch_storage("grad_norm", gc, [&](auto zero) {
      using T = decltype(zero);
      count += MV_KERNEL(dev, global_norm_partials, ptr<float>(partials) + count, ptr<const T>(gc),
                         static_cast<std::size_t>(gc.numel()), stream_for(dev));
    });
  }
  MV_KERNEL(dev, global_norm_finish, ptr<float>(out), ptr<const float>(partials), count, 0.0f,
            stream_for(dev));
  return out.narrow(0, 0, 1).item();
}

void adamw_update(const Tensor& param, const Tensor& master, const Tensor& grad, const Tensor& m,
                  const Tensor& v, const AdamWStep& s, const Tensor& grad_scale) {
  const Device dev = param.device();
  for (const Tensor* t : {&grad, &m, &v}) check_device("adamw", *t, dev);
  MV_CHECK(param.is_contiguous() && m.is_contiguous() && v.is_contiguous() &&
               m.dtype() == DType::f32 && v.dtype() == DType::f32 && m.numel() == param.numel() &&
               v.numel() == param.numel(),
           "adamw: parameter ", param.desc(), " needs contiguous f32 moments of its size, got ",
           m.desc(), " and ", v.desc());
  if (master.defined())
    MV_CHECK(master.device() == dev && master.dtype() == DType::f32 && master.is_contiguous() &&
                 master.numel() == param.numel(),
             "adamw: master weights ", master.desc(), " do not fit parameter ", param.desc());
  if (grad_scale.defined())
    MV_CHECK(
        grad_scale.device() == dev && grad_scale.dtype() == DType::f32 && grad_scale.numel() == 1,
        "adamw: grad_scale must be one f32 value on ", dev.str(), ", got ", grad_scale.desc());
  const Tensor g = contiguous_input(grad.dtype() == param.dtype() ? grad : grad.to(param.dtype()));
  dispatch_storage("adamw", param, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, adamw_update, master.defined() ? ptr<float>(master) : nullptr, ptr<T>(param),
              ptr<const T>(g), ptr<float>(m), ptr<float>(v),
              static_cast<std::size_t>(param.numel()), s.lr, s.beta1, s.beta2, s.eps,
              s.weight_decay, s.step, grad_scale.defined() ? ptr<const float>(grad_scale) : nullptr,
              stream_for(dev));
  });
}

}  // namespace minivlm::cuda
