// Rotary embedding, token embedding and index lists on the CUDA back-end.
#include "cuda/backend.h"

namespace minivlm::cuda {

Tensor CudaBackend::rope(const Tensor& x, double theta, int64_t start_pos, const Tensor& positions,
                         bool inverse) {
  const Device dev = x.device();
  const int B = static_cast<int>(x.size(0)), T = static_cast<int>(x.size(1));
  const int nh = static_cast<int>(x.size(2)), hd = static_cast<int>(x.size(3));
  const int start = static_cast<int>(start_pos);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);
  dispatch_storage("rope", x, [&](auto zero) {
    using S = decltype(zero);
    if (positions.defined()) {
      if (inverse)
        MV_KERNEL(dev, rope_backward_at, ptr<S>(out), ptr<const S>(x), ptr<const int>(positions), B,
                  T, nh, hd, theta, stream_for(dev));
      else
        MV_KERNEL(dev, rope_forward_at, ptr<S>(out), ptr<const S>(x), ptr<const int>(positions), B,
                  T, nh, hd, theta, stream_for(dev));
    } else if (inverse) {
      MV_KERNEL(dev, rope_backward, ptr<S>(out), ptr<const S>(x), B, T, nh, hd, theta, start,
                stream_for(dev));
    } else {
      MV_KERNEL(dev, rope_forward, ptr<S>(out), ptr<const S>(x), B, T, nh, hd, theta, start,
                stream_for(dev));
    }
  });
  return out;
}

// i32 on the device (the kernels' index type); the ignored target kIgnoredRow is the kernels'
// kIgnoreIndex.
Tensor CudaBackend::indices(const std::vector<int64_t>& values, Device device) {
  static_assert(kIgnoredRow == kernels::kIgnoreIndex);
  std::vector<int32_t> v(values.begin(), values.end());
  for (size_t i = 0; i < v.size(); ++i)
    MV_CHECK(v[i] == values[i], "index ", values[i], " at position ", i,
             " does not fit the CUDA back-end's 32-bit indices");
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}).to(device);
}

Tensor CudaBackend::embedding_forward(const Tensor& weight, const Tensor& ids) {
  const Device dev = weight.device();
  const int V = static_cast<int>(weight.size(0)), C = static_cast<int>(weight.size(1));
  const int N = static_cast<int>(ids.numel());
  Tensor out = Tensor::empty({N, C}, weight.dtype(), dev);
  dispatch_storage("embedding", weight, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, embedding_forward, ptr<T>(out), ptr<const int>(ids), ptr<const T>(weight), N, V,
              C, stream_for(dev));
  });
  return out;
}

Tensor CudaBackend::embedding_backward(const Tensor& dout, const Tensor& ids, int64_t vocab) {
  const Device dev = dout.device();
  const int V = static_cast<int>(vocab), C = static_cast<int>(dout.size(1));
  const int N = static_cast<int>(ids.numel());
  Tensor dw = Tensor::empty({V, C}, dout.dtype(), dev);
  dispatch_storage("embedding", dw, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, embedding_backward, ptr<T>(dw), ptr<const T>(dout), ptr<const int>(ids), N, V, C,
              stream_for(dev));
  });
  return dw;
}

}  // namespace minivlm::cuda
