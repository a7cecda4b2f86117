// SiLU, GELU (erf and tanh forms), quick_gelu, SwiGLU and softmax on the CUDA back-end.
#include "cuda/backend.h"

namespace minivlm::cuda {

Tensor CudaBackend::activation_forward(Activation a, const Tensor& x) {
  const Device dev = x.device();
  const auto n = static_cast<std::size_t>(x.numel());
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);
  dispatch_storage("activation", x, [&](auto zero) {
    using T = decltype(zero);
    switch (a) {
      case Activation::silu:
        MV_KERNEL(dev, silu_forward, ptr<T>(out), ptr<const T>(x), n, stream_for(dev));
        break;
      case Activation::gelu:
        MV_KERNEL(dev, gelu_forward, ptr<T>(out), ptr<const T>(x), n, stream_for(dev));
        break;
      case Activation::gelu_tanh:
        MV_KERNEL(dev, gelu_tanh_forward, ptr<T>(out), ptr<const T>(x), n, stream_for(dev));
        break;
      case Activation::quick_gelu:
        MV_KERNEL(dev, quick_gelu_forward, ptr<T>(out), ptr<const T>(x), n, stream_for(dev));
        break;
    }
  });
  return out;
}

Tensor CudaBackend::activation_backward(Activation a, const Tensor& dout, const Tensor& x) {
  const Device dev = x.device();
  const auto n = static_cast<std::size_t>(x.numel());
  Tensor dx = Tensor::empty(x.shape(), x.dtype(), dev);
  dispatch_storage("activation", x, [&](auto zero) {
    using T = decltype(zero);
    switch (a) {
      case Activation::silu:
        MV_KERNEL(dev, silu_backward, ptr<T>(dx), ptr<const T>(dout), ptr<const T>(x), n,
                  stream_for(dev));
        break;
      case Activation::gelu:
        MV_KERNEL(dev, gelu_backward, ptr<T>(dx), ptr<const T>(dout), ptr<const T>(x), n,
                  stream_for(dev));
        break;
      case Activation::gelu_tanh:
        MV_KERNEL(dev, gelu_tanh_backward, ptr<T>(dx), ptr<const T>(dout), ptr<const T>(x), n,
                  stream_for(dev));
        break;
      case Activation::quick_gelu:
        MV_KERNEL(dev, quick_gelu_backward, ptr<T>(dx), ptr<const T>(dout), ptr<const T>(x), n,
                  stream_for(dev));
        break;
    }
  });
  return dx;
}

Tensor CudaBackend::swiglu_forward(const Tensor& gate, const Tensor& up) {
  const Device dev = gate.device();
  const auto n = static_cast<std::size_t>(gate.numel());
  Tensor out = Tensor::empty(gate.shape(), gate.dtype(), dev);
  dispatch_storage("swiglu", gate, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, swiglu_forward, ptr<T>(out), ptr<const T>(gate), ptr<const T>(up), n,
              stream_for(dev));
  });
  return out;
}

std::array<Tensor, 2> CudaBackend::swiglu_backward(const Tensor& dout, const Tensor& gate,
                                                   const Tensor& up) {
  const Device dev = gate.device();
  const auto n = static_cast<std::size_t>(gate.numel());
  Tensor dgate = Tensor::empty(gate.shape(), gate.dtype(), dev);
  Tensor dup = Tensor::empty(gate.shape(), gate.dtype(), dev);
  dispatch_storage("swiglu", gate, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, swiglu_backward, ptr<T>(dgate), ptr<T>(dup), ptr<const T>(dout),
              ptr<const T>(gate), ptr<const T>(up), n, stream_for(dev));
  });
  return {dgate, dup};
}

Tensor CudaBackend::softmax_forward(const Tensor& x) {
  const Device dev = x.device();
  const int64_t n = x.dim() == 0 ? 1 : x.size(-1);
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);
  dispatch_storage("softmax", x, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, softmax_forward, ptr<T>(out), ptr<const T>(x), static_cast<int>(rows),
              static_cast<int>(n), stream_for(dev));
  });
  return out;
}

Tensor CudaBackend::softmax_backward(const Tensor& dout, const Tensor& y) {
  const Device dev = y.device();
  const int64_t n = y.dim() == 0 ? 1 : y.size(-1);
  const int64_t rows = n == 0 ? 0 : y.numel() / n;
  Tensor dx = Tensor::empty(y.shape(), y.dtype(), dev);
  dispatch_storage("softmax", y, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, softmax_backward, ptr<T>(dx), ptr<const T>(dout), ptr<const T>(y),
              static_cast<int>(rows), static_cast<int>(n), stream_for(dev));
  });
  return dx;
}

}  // namespace minivlm::cuda
