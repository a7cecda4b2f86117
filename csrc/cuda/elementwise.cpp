// Strided copies with dtype conversion (the tensor core's device copy), element-wise arithmetic,
// sums over a dimension and the bias add on the CUDA back-end.
#include <algorithm>

#include "cuda/backend.h"

namespace minivlm::cuda {

namespace {

kernels::StridedView view_of(const Tensor& t) {
  MV_CHECK(t.dim() <= kernels::kMaxViewDims, "copy_: ", t.desc(), " has more than ",
           kernels::kMaxViewDims, " dimensions");
  kernels::StridedView v;
  v.ndim = static_cast<int>(t.dim());
  for (int d = 0; d < v.ndim; ++d) {
    v.shape[d] = t.shape()[static_cast<size_t>(d)];
    v.stride[d] = t.strides()[static_cast<size_t>(d)];
  }
  return v;
}

template <typename To, typename From>
void convert(const Tensor& dst, const Tensor& src) {
  const Device dev = dst.device();
  MV_KERNEL(dev, strided_convert, ptr<To>(dst), view_of(dst), ptr<const From>(src), view_of(src),
            stream_for(dev));
}

kernels::BinaryOp kernel_op(BinaryOp op) {
  switch (op) {
    case BinaryOp::add:
      return kernels::BinaryOp::add;
    case BinaryOp::sub:
      return kernels::BinaryOp::sub;
    case BinaryOp::mul:
      return kernels::BinaryOp::mul;
  }
  return kernels::BinaryOp::add;
}

}  // namespace

bool device_copy(const Tensor& dst, const Tensor& src) {
  MV_CHECK(src.device() == dst.device(), "copy_: ", src.desc(), " is not on ", dst.device().str());
  if (dst.dtype() == src.dtype()) {
    switch (dtype_size(dst.dtype())) {
      case 1:
        convert<uint8_t, uint8_t>(dst, src);
        return true;
      case 2:
        convert<uint16_t, uint16_t>(dst, src);
        return true;
      case 4:
        convert<uint32_t, uint32_t>(dst, src);
        return true;
      case 8:
        convert<uint64_t, uint64_t>(dst, src);
        return true;
      default:
        return false;
    }
  }
  if (dst.dtype() == DType::f32 && src.dtype() == DType::bf16) {
    convert<float, bf16>(dst, src);
    return true;
  }
  if (dst.dtype() == DType::bf16 && src.dtype() == DType::f32) {
    convert<bf16, float>(dst, src);
    return true;
  }
  return false;
}

Tensor CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& shape) {
  const Device dev = a.device();
  // a [..., C] + b [C] (a linear layer's bias): the bias kernel, without materialising the
  // broadcast operand.
  if (op == BinaryOp::add && b.dim() == 1 && a.shape() == shape && a.numel() > 0 &&
      b.size(0) == a.size(-1)) {
    Tensor out = a.clone();
    add_bias_(out, b.contiguous());
    return out;
  }
  const Tensor ac = (a.shape() == shape ? a : broadcast_view(a, shape)).contiguous();
  const Tensor bc = (b.shape() == shape ? b : broadcast_view(b, shape)).contiguous();
  Tensor out = Tensor::empty(shape, a.dtype(), dev);
  dispatch_storage("binary", a, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, binary, ptr<T>(out), ptr<const T>(ac), ptr<const T>(bc),
              static_cast<std::size_t>(out.numel()), kernel_op(op), stream_for(dev));
  });
  return out;
}

Tensor CudaBackend::scale(const Tensor& a, double s) {
  const Device dev = a.device();
  Tensor out = Tensor::empty(a.shape(), a.dtype(), dev);
  dispatch_storage("scale", a, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, scale, ptr<T>(out), ptr<const T>(a), static_cast<float>(s),
              static_cast<std::size_t>(out.numel()), stream_for(dev));
  });
  return out;
}

Tensor CudaBackend::sum_dim(const Tensor& a, int64_t dim) {
  const Device dev = a.device();
  int64_t outer = 1, inner = 1;
  const int64_t n = a.shape()[static_cast<size_t>(dim)];
  for (int64_t i = 0; i < dim; ++i) outer *= a.shape()[static_cast<size_t>(i)];
  for (int64_t i = dim + 1; i < a.dim(); ++i) inner *= a.shape()[static_cast<size_t>(i)];
  Shape out_shape = a.shape();
  out_shape[static_cast<size_t>(dim)] = 1;
  Tensor out = Tensor::empty(out_shape, a.dtype(), dev);
  dispatch_storage("sum", a, [&](auto zero) {
    using T = decltype(zero);
    if (outer == 1 && n > 1 && inner > 0) {
      // Column sums of [n, inner] (bias gradients): rows in chunks, the chunks added in order.
      const int N = static_cast<int>(n), C = static_cast<int>(inner);
      const auto floats = static_cast<int64_t>(kernels::column_sum_scratch_floats(N, C));
      Tensor scratch = Tensor::empty({std::max<int64_t>(floats, 1)}, DType::f32, dev);
      MV_KERNEL(dev, bias_add_backward, ptr<T>(out), ptr<float>(scratch), ptr<const T>(a), N, C,
                stream_for(dev));
    } else {
      MV_KERNEL(dev, sum_dim, ptr<T>(out), ptr<const T>(a), outer, n, inner, stream_for(dev));
    }
  });
  return out;
}

void CudaBackend::add_bias_(const Tensor& y, const Tensor& bias) {
  const Device dev = y.device();
  const int C = static_cast<int>(y.size(-1));
  const int N = C == 0 ? 0 : static_cast<int>(y.numel() / C);
  dispatch_storage("add", y, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, bias_add_forward, ptr<T>(y), ptr<const T>(y), ptr<const T>(bias), N, C,
              stream_for(dev));
  });
}

}  // namespace minivlm::cuda
