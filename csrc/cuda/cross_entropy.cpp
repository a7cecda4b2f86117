// The fused cross-entropy on the CUDA back-end: the kernel writes (softmax − onehot) ·
// 1/denominator over a copy of the logits in the forward; the backward only scales it by the
// incoming gradient (a device scalar: no host round trip). The loss is fp32 whatever the logits'
// storage.
#include "cuda/backend.h"

namespace minivlm::cuda {

Backend::CrossEntropy CudaBackend::cross_entropy_forward(const Tensor& logits,
                                                         const Tensor& targets, double denom) {
  const Device dev = logits.device();
  const int N = static_cast<int>(logits.size(0)), V = static_cast<int>(logits.size(1));
  CrossEntropy c{Tensor::zeros({}, DType::f32, dev), Tensor()};
  if (denom <= 0) return c;
  c.saved = logits.clone();  // becomes dlogits / dloss
  Tensor losses = Tensor::empty({N}, DType::f32, dev);
  dispatch_storage("cross_entropy", logits, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, cross_entropy_forward_backward, ptr<float>(losses), ptr<T>(c.saved),
              ptr<const int>(targets), N, V, static_cast<float>(1.0 / denom), stream_for(dev));
  });
  MV_KERNEL(dev, reduce_sum, ptr<float>(c.loss), ptr<const float>(losses), N, stream_for(dev));
  MV_KERNEL(dev, scale, ptr<float>(c.loss), ptr<const float>(c.loss),
            static_cast<float>(1.0 / denom), 1, stream_for(dev));
  return c;
}

Tensor CudaBackend::cross_entropy_backward(const Tensor& dloss, const Tensor& logits, const Tensor&,
                                           const CrossEntropy& saved, double denom) {
  const Device dev = logits.device();
  Tensor dx = Tensor::zeros(logits.shape(), logits.dtype(), dev);
  if (denom <= 0) return dx;
  dx.copy_(saved.saved);
  const Tensor gs = dloss.to(DType::f32).contiguous();
  dispatch_storage("cross_entropy", dx, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, scale_inplace, ptr<T>(dx), static_cast<std::size_t>(dx.numel()),
              ptr<const float>(gs), stream_for(dev));
  });
  return dx;
}

}  // namespace minivlm::cuda
