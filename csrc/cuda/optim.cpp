// The optimizer's device side: the global gradient norm (deterministic fp32 partial sums) and the
// AdamW update with fp32 moments and optional fp32 master weights; gradients in the parameters'
// dtype or f32 (bf16 parameters accumulate f32 gradients).
#include <algorithm>

#include "cuda/backend.h"

namespace minivlm::cuda {

double CudaBackend::grad_norm(const std::vector<Tensor>& grads) {
  const Device dev = grads[0].device();
  int64_t slots = 0;
  for (const Tensor& g : grads) {
    MV_CHECK(g.device() == dev, "grad_norm: gradient ", g.desc(), " is not on ", dev.str());
    slots += kernels::global_norm_partial_count(static_cast<std::size_t>(g.numel()));
  }
  Tensor partials = Tensor::empty({std::max<int64_t>(slots, 1)}, DType::f32, dev);
  Tensor out = Tensor::empty({2}, DType::f32, dev);  // norm, clipping factor (unused here)
  int count = 0;
  for (const Tensor& g : grads) {
    const Tensor gc = g.contiguous();
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

void CudaBackend::adamw_update(std::span<const AdamWSlot> slots, const AdamWHyper& h) {
  const Device dev = slots.front().param.device();
  // The clipping factor as one device value for every update (undefined: 1).
  const Tensor scale =
      h.grad_scale == 1.0
          ? Tensor()
          : Tensor::from_vector(std::vector<float>{static_cast<float>(h.grad_scale)}, {1}).to(dev);
  for (const AdamWSlot& s : slots) {
    const Tensor& param = s.param;
    for (const Tensor* t : {&s.grad, &s.m, &s.v})
      MV_CHECK(t->device() == dev, "adamw: ", t->desc(), " is not on ", dev.str());
    MV_CHECK(param.is_contiguous() && s.m.is_contiguous() && s.v.is_contiguous() &&
                 s.m.dtype() == DType::f32 && s.v.dtype() == DType::f32 &&
                 s.m.numel() == param.numel() && s.v.numel() == param.numel(),
             "adamw: parameter ", param.desc(), " needs contiguous f32 moments of its size, got ",
             s.m.desc(), " and ", s.v.desc());
    if (s.master.defined())
      MV_CHECK(s.master.device() == dev && s.master.dtype() == DType::f32 &&
                   s.master.is_contiguous() && s.master.numel() == param.numel(),
               "adamw: master weights ", s.master.desc(), " do not fit parameter ", param.desc());
    // f32 gradients as they are (a bf16 parameter's, autograd/node.h grad_dtype); any other
    // gradient in the parameter's dtype.
    const Tensor g =
        (s.grad.dtype() == param.dtype() || s.grad.dtype() == DType::f32 ? s.grad
                                                                         : s.grad.to(param.dtype()))
            .contiguous();
    dispatch_storage("adamw", param, [&](auto zero) {
      using T = decltype(zero);
      const auto update = [&](auto* grads) {
        MV_KERNEL(dev, adamw_update, s.master.defined() ? ptr<float>(s.master) : nullptr,
                  ptr<T>(param), grads, ptr<float>(s.m), ptr<float>(s.v),
                  static_cast<std::size_t>(param.numel()), h.lr, h.beta1, h.beta2, h.eps,
                  h.weight_decay, static_cast<long>(h.step),
                  scale.defined() ? ptr<const float>(scale) : nullptr, stream_for(dev));
      };
      if (g.dtype() == DType::f32)
        update(ptr<const float>(g));
      else
        update(ptr<const T>(g));
    });
  }
}

}  // namespace minivlm::cuda
