// Row gathers and scatters of 2-D tensors on the CUDA back-end (image rows merged into the token
// embeddings); row indices are the back-end's i32 index lists.
#include "cuda/backend.h"

namespace minivlm::cuda {

Tensor CudaBackend::gather_rows(const Tensor& x, const Tensor& idx) {
  const Device dev = x.device();
  const int M = static_cast<int>(idx.numel());
  const int64_t H = x.size(1);
  Tensor out = Tensor::empty({M, H}, x.dtype(), dev);
  dispatch_storage("gather_rows", x, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, copy_rows, ptr<T>(out), nullptr, ptr<const T>(x), ptr<const int>(idx), M, H,
              stream_for(dev));
  });
  return out;
}

Tensor CudaBackend::index_add_rows(int64_t rows, const Tensor& idx, const Tensor& src) {
  const Device dev = src.device();
  const int M = static_cast<int>(idx.numel());
  const int64_t H = src.size(1);
  Tensor out = Tensor::zeros({rows, H}, src.dtype(), dev);
  dispatch_storage("gather_rows", src, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, add_rows, ptr<T>(out), ptr<const int>(idx), ptr<const T>(src), M, H,
              stream_for(dev));
  });
  return out;
}

Tensor CudaBackend::scatter_rows(const Tensor& base, const Tensor& idx, const Tensor& src) {
  const Device dev = base.device();
  const int M = static_cast<int>(idx.numel());
  const int64_t H = base.size(1);
  Tensor out = base.clone();
  dispatch_storage("scatter_rows", base, [&](auto zero) {
    using T = decltype(zero);
    // A null source writes zeros.
    const T* in = src.defined() ? ptr<const T>(src) : nullptr;
    MV_KERNEL(dev, copy_rows, ptr<T>(out), ptr<const int>(idx), in, nullptr, M, H, stream_for(dev));
  });
  return out;
}

}  // namespace minivlm::cuda
