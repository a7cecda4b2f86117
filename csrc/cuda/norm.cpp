// RMSNorm and LayerNorm on the CUDA back-end: forward saves fp32 rstd (and mean), backward reduces
// the weight gradient in the kernels' deterministic two steps (kernels/rmsnorm.cuh, layernorm.cuh).
#include "cuda/backend.h"

namespace minivlm::cuda {

namespace {

std::array<int, 2> rows_cols(const Tensor& x) {
  const int64_t C = x.size(-1);
  return {static_cast<int>(C == 0 ? 0 : x.numel() / C), static_cast<int>(C)};
}

}  // namespace

Backend::Norm CudaBackend::rmsnorm_forward(const Tensor& x, const Tensor& weight, double eps) {
  const Device dev = x.device();
  const auto [N, C] = rows_cols(x);
  Norm s{Tensor::empty(x.shape(), x.dtype(), dev), Tensor(), Tensor::empty({N}, DType::f32, dev)};
  dispatch_storage("rmsnorm", x, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, rmsnorm_forward, ptr<T>(s.out), ptr<float>(s.rstd), ptr<const T>(x),
              ptr<const T>(weight), N, C, static_cast<float>(eps), stream_for(dev));
  });
  return s;
}

std::array<Tensor, 2> CudaBackend::rmsnorm_backward(const Tensor& dout, const Tensor& x,
                                                    const Tensor& weight, const Norm& saved) {
  const Device dev = x.device();
  const auto [N, C] = rows_cols(x);
  Tensor dx = Tensor::empty(x.shape(), x.dtype(), dev);
  Tensor dw = Tensor::empty(weight.shape(), weight.dtype(), dev);
  Tensor scratch = Tensor::empty(
      {static_cast<int64_t>(kernels::rmsnorm_backward_scratch_floats(N, C))}, DType::f32, dev);
  dispatch_storage("rmsnorm", x, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, rmsnorm_backward, ptr<T>(dx), ptr<T>(dw), ptr<float>(scratch),
              ptr<const T>(dout), ptr<const T>(x), ptr<const T>(weight),
              ptr<const float>(saved.rstd), N, C, stream_for(dev));
  });
  return {dx, dw};
}

Backend::Norm CudaBackend::layernorm_forward(const Tensor& x, const Tensor& weight,
                                             const Tensor& bias, double eps) {
  const Device dev = x.device();
  const auto [N, C] = rows_cols(x);
  Norm s{Tensor::empty(x.shape(), x.dtype(), dev), Tensor::empty({N}, DType::f32, dev),
         Tensor::empty({N}, DType::f32, dev)};
  dispatch_storage("layernorm", x, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, layernorm_forward, ptr<T>(s.out), ptr<float>(s.mean), ptr<float>(s.rstd),
              ptr<const T>(x), ptr<const T>(weight), ptr<const T>(bias), N, C,
              static_cast<float>(eps), stream_for(dev));
  });
  return s;
}

std::array<Tensor, 3> CudaBackend::layernorm_backward(const Tensor& dout, const Tensor& x,
                                                      const Tensor& weight, const Norm& saved) {
  const Device dev = x.device();
  const auto [N, C] = rows_cols(x);
  Tensor dx = Tensor::empty(x.shape(), x.dtype(), dev);
  Tensor dw = Tensor::empty(weight.shape(), weight.dtype(), dev);
  Tensor db = Tensor::empty(weight.shape(), weight.dtype(), dev);
  Tensor scratch = Tensor::empty(
      {static_cast<int64_t>(kernels::layernorm_backward_scratch_floats(N, C))}, DType::f32, dev);
  dispatch_storage("layernorm", x, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, layernorm_backward, ptr<T>(dx), ptr<T>(dw), ptr<T>(db), ptr<float>(scratch),
              ptr<const T>(dout), ptr<const T>(x), ptr<const T>(weight),
              ptr<const float>(saved.mean), ptr<const float>(saved.rstd), N, C, stream_for(dev));
  });
  return {dx, dw, db};
}

}  // namespace minivlm::cuda
