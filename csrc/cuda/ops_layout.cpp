// Row gathers and scatters (image rows merged into the token embeddings) and the pixel shuffle on
// the CUDA back-end.
#include <vector>

#include "autograd/node.h"
#include "cuda/backend.h"
#include "kernels/kernels.h"
#include "cuda/ops.h"

namespace minivlm::cuda {

namespace {

// Row indices (already checked against the row count) as i32 on `dev`.
Tensor device_rows(const std::vector<int64_t>& rows, Device dev) {
  std::vector<int32_t> r(rows.begin(), rows.end());
  return Tensor::from_vector(r, {static_cast<int64_t>(r.size())}).to(dev);
}

}  // namespace

Tensor gather_rows(const Tensor& x, const Tensor& idx, const std::vector<int64_t>& rows) {
  const Device dev = x.device();
  const Tensor xc = contiguous_input(x);
  const Tensor r = device_rows(rows, dev);
  const int M = static_cast<int>(rows.size());
  const int64_t H = x.size(1);
  Tensor out = device_empty({M, H}, x.dtype(), dev);
  dispatch_storage("gather_rows", x, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, copy_rows, ptr<T>(out), nullptr, ptr<const T>(xc), ptr<const int>(r), M, H,
              stream_for(dev));
  });
  const Shape in_shape = x.shape();
  return record(out, "gather_rows", {x, idx}, [=](const Tensor& g) {
    const Tensor gc = contiguous_input(g);
    Tensor dx = Tensor::zeros(in_shape, gc.dtype(), dev);
    dispatch_storage("gather_rows", gc, [&](auto zero) {
      using T = decltype(zero);
      MV_KERNEL(dev, add_rows, ptr<T>(dx), ptr<const int>(r), ptr<const T>(gc), M, H,
                stream_for(dev));
    });
    return std::vector<Tensor>{dx, Tensor()};
  });
}

Tensor scatter_rows(const Tensor& base, const Tensor& idx, const Tensor& src,
                    const std::vector<int64_t>& rows) {
  const Device dev = base.device();
  check_device("scatter_rows", src, dev);
  const Tensor r = device_rows(rows, dev);
  const int M = static_cast<int>(rows.size());
  const int64_t H = base.size(1);
  const Tensor sc = contiguous_input(src);
  Tensor out = strided_copy(base);
  dispatch_storage("scatter_rows", base, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, copy_rows, ptr<T>(out), ptr<const int>(r), ptr<const T>(sc), nullptr, M, H,
              stream_for(dev));
  });
  return record(out, "scatter_rows", {base, idx, src}, [=](const Tensor& g) {
    Tensor dbase = strided_copy(g);
    Tensor dsrc = device_empty({M, H}, g.dtype(), dev);
    dispatch_storage("scatter_rows", g, [&](auto zero) {
      using T = decltype(zero);
      MV_KERNEL(dev, copy_rows, ptr<T>(dsrc), nullptr, ptr<const T>(dbase), ptr<const int>(r), M, H,
                stream_for(dev));
      MV_KERNEL(dev, copy_rows, ptr<T>(dbase), ptr<const int>(r), static_cast<const T*>(nullptr),
                nullptr, M, H, stream_for(dev));
    });
    return std::vector<Tensor>{dbase, Tensor(), dsrc};
  });
}

Tensor pixel_shuffle(const Tensor& x, int64_t G, int64_t r) {
  const Device dev = x.device();
  const int64_t S = G * G, D = x.size(-1);
  const int B = static_cast<int>(S * D == 0 ? 0 : x.numel() / (S * D));
  Shape out_shape(x.shape().begin(), x.shape().end() - 2);
  out_shape.push_back(S / (r * r));
  out_shape.push_back(D * r * r);
  const Tensor xc = contiguous_input(x);
  Tensor out = device_empty(out_shape, x.dtype(), dev);
  const int g = static_cast<int>(G), d = static_cast<int>(D), f = static_cast<int>(r);
  dispatch_storage("pixel_shuffle", x, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, pixel_shuffle_forward, ptr<T>(out), ptr<const T>(xc), B, g, d, f,
              stream_for(dev));
  });
  const Shape in_shape = x.shape();
  return record(out, "pixel_shuffle", {x}, [=](const Tensor& grad) {
    const Tensor gc = contiguous_input(grad);
    Tensor dx = device_empty(in_shape, gc.dtype(), dev);
    dispatch_storage("pixel_shuffle", gc, [&](auto zero) {
      using T = decltype(zero);
      MV_KERNEL(dev, pixel_shuffle_backward, ptr<T>(dx), ptr<const T>(gc), B, g, d, f,
                stream_for(dev));
    });
    return std::vector<Tensor>{dx};
  });
}

}  // namespace minivlm::cuda
