// The pixel-shuffle kernels (kernels/pixel_shuffle.cuh) on the CUDA back-end.
#include "cuda/backend.h"

namespace minivlm::cuda {

namespace {

// [..., G², D] as the kernels' B images of G² rows.
int images_of(const Shape& x_shape, int64_t G) {
  const int64_t per = G * G * x_shape.back();
  return static_cast<int>(per == 0 ? 0 : shape_numel(x_shape) / per);
}

}  // namespace

Tensor CudaBackend::pixel_shuffle_forward(const Tensor& x, int64_t G, int64_t r) {
  const Device dev = x.device();
  const int64_t D = x.size(-1);
  Shape out_shape(x.shape().begin(), x.shape().end() - 2);
  out_shape.push_back(G * G / (r * r));
  out_shape.push_back(D * r * r);
  Tensor out = Tensor::empty(out_shape, x.dtype(), dev);
  dispatch_storage("pixel_shuffle", x, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, pixel_shuffle_forward, ptr<T>(out), ptr<const T>(x), images_of(x.shape(), G),
              static_cast<int>(G), static_cast<int>(D), static_cast<int>(r), stream_for(dev));
  });
  return out;
}

Tensor CudaBackend::pixel_shuffle_backward(const Tensor& dout, const Shape& x_shape, int64_t G,
                                           int64_t r) {
  const Device dev = dout.device();
  Tensor dx = Tensor::empty(x_shape, dout.dtype(), dev);
  dispatch_storage("pixel_shuffle", dout, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, pixel_shuffle_backward, ptr<T>(dx), ptr<const T>(dout), images_of(x_shape, G),
              static_cast<int>(G), static_cast<int>(x_shape.back()), static_cast<int>(r),
              stream_for(dev));
  });
  return dx;
}

}  // namespace minivlm::cuda
