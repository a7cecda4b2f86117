// Layout copies (strided, with dtype conversion: the tensor core's device copy), element-wise
// arithmetic and sums over a dimension on the CUDA back-end. Backward closures are compositions of
// ops:: front-ends, so they run on whatever device the gradient is.
#include "autograd/node.h"
#include "cuda/backend.h"
#include "kernels/kernels.h"
#include "cuda/ops.h"
#include "ops/ops.h"

namespace minivlm::cuda {

void check_device(const char* op, const Tensor& t, Device device) {
  MV_CHECK(t.defined(), op, ": undefined input tensor");
  MV_CHECK(t.device() == device, op, ": input ", t.desc(), " is not on ", device.str());
}

Tensor contiguous_input(const Tensor& t) {
  return t.is_contiguous() ? t.detach() : strided_copy(t);
}

Tensor device_empty(const Shape& shape, DType dtype, Device device) {
  return Tensor::empty(shape, dtype, device);
}

Tensor strided_copy(const Tensor& src) {
  Tensor out = device_empty(src.shape(), src.dtype(), src.device());
  MV_CHECK(device_copy(out, src), "strided_copy: no device copy for ", src.desc());
  return out;
}

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

// Tensor::copy_ reaches the device copy through the core's registry; view_ops (Tensor::clone)
// calls strided_copy, so this file is always linked.
const bool device_copy_registered = [] {
  register_device_copy(DeviceType::cuda_emu, &device_copy);
  register_device_copy(DeviceType::cuda, &device_copy);
  return true;
}();

}  // namespace

bool device_copy(const Tensor& dst, const Tensor& src) {
  check_device("copy_", src, dst.device());
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

namespace {

// a [..., C] + bias [C] (a linear layer's bias): the bias kernels, without materialising the
// broadcast bias; the bias gradient is their deterministic column sum.
Tensor bias_add(const Tensor& a, const Tensor& bias) {
  const Device dev = a.device();
  const int C = static_cast<int>(a.size(-1));
  const int N = C == 0 ? 0 : static_cast<int>(a.numel() / C);
  const Tensor ac = contiguous_input(a), bc = contiguous_input(bias);
  Tensor out = device_empty(a.shape(), a.dtype(), dev);
  dispatch_storage("add", a, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, bias_add_forward, ptr<T>(out), ptr<const T>(ac), ptr<const T>(bc), N, C,
              stream_for(dev));
  });
  return record(out, "add", {a, bias}, [=](const Tensor& g) {
    const Tensor gc = contiguous_input(g);
    Tensor db = device_empty({C}, gc.dtype(), dev);
    const auto floats = static_cast<int64_t>(kernels::column_sum_scratch_floats(N, C));
    Tensor scratch = device_empty({std::max<int64_t>(floats, 1)}, DType::f32, dev);
    dispatch_storage("add", gc, [&](auto zero) {
      using T = decltype(zero);
      MV_KERNEL(dev, bias_add_backward, ptr<T>(db), ptr<float>(scratch), ptr<const T>(gc), N, C,
                stream_for(dev));
    });
    return std::vector<Tensor>{g, db};
  });
}

Tensor binary(kernels::BinaryOp kind, const char* op, const Tensor& a, const Tensor& b) {
  const Device dev = a.device();
  check_device(op, b, dev);
  MV_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch between ", a.desc(), " and ", b.desc());
  const Shape shape = broadcast_shapes(op, a.shape(), b.shape());
  if (kind == kernels::BinaryOp::add && b.dim() == 1 && a.shape() == shape && a.numel() > 0 &&
      b.size(0) == a.size(-1))
    return bias_add(a, b);
  const Tensor ac = contiguous_input(a.shape() == shape ? a : ops::expand(a.detach(), shape));
  const Tensor bc = contiguous_input(b.shape() == shape ? b : ops::expand(b.detach(), shape));
  Tensor out = device_empty(shape, a.dtype(), dev);
  dispatch_storage(op, a, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, binary, ptr<T>(out), ptr<const T>(ac), ptr<const T>(bc),
              static_cast<std::size_t>(out.numel()), kind, stream_for(dev));
  });
  const Shape sa = a.shape(), sb = b.shape();
  const Tensor a_saved = kind == kernels::BinaryOp::mul ? a.detach() : Tensor();
  const Tensor b_saved = kind == kernels::BinaryOp::mul ? b.detach() : Tensor();
  return record(out, op, {a, b}, [=](const Tensor& g) {
    switch (kind) {
      case kernels::BinaryOp::add:
        return std::vector<Tensor>{ops::reduce_to_shape(g, sa), ops::reduce_to_shape(g, sb)};
      case kernels::BinaryOp::sub:
        return std::vector<Tensor>{ops::reduce_to_shape(g, sa),
                                   ops::reduce_to_shape(ops::scale(g, -1.0), sb)};
      case kernels::BinaryOp::mul:
        return std::vector<Tensor>{ops::reduce_to_shape(ops::mul(g, b_saved), sa),
                                   ops::reduce_to_shape(ops::mul(g, a_saved), sb)};
    }
    return std::vector<Tensor>{};
  });
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(kernels::BinaryOp::add, "add", a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(kernels::BinaryOp::sub, "sub", a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(kernels::BinaryOp::mul, "mul", a, b); }

Tensor scale(const Tensor& a, double s) {
  const Device dev = a.device();
  const Tensor ac = contiguous_input(a);
  Tensor out = device_empty(a.shape(), a.dtype(), dev);
  dispatch_storage("scale", a, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, scale, ptr<T>(out), ptr<const T>(ac), static_cast<float>(s),
              static_cast<std::size_t>(out.numel()), stream_for(dev));
  });
  return record(out, "scale", {a},
                [s](const Tensor& g) { return std::vector<Tensor>{ops::scale(g, s)}; });
}

Tensor sum(const Tensor& a, int64_t dim, bool keepdim) {
  const Device dev = a.device();
  dim = wrap_dim(dim, a.dim());
  const Tensor ac = contiguous_input(a);
  int64_t outer = 1, inner = 1;
  const int64_t n = a.shape()[static_cast<size_t>(dim)];
  for (int64_t i = 0; i < dim; ++i) outer *= a.shape()[static_cast<size_t>(i)];
  for (int64_t i = dim + 1; i < a.dim(); ++i) inner *= a.shape()[static_cast<size_t>(i)];
  Shape out_shape = a.shape();
  out_shape[static_cast<size_t>(dim)] = 1;
  Tensor out = device_empty(out_shape, a.dtype(), dev);
  dispatch_storage("sum", a, [&](auto zero) {
    using T = decltype(zero);
    MV_KERNEL(dev, sum_dim, ptr<T>(out), ptr<const T>(ac), outer, n, inner, stream_for(dev));
  });
  if (!keepdim) out_shape.erase(out_shape.begin() + dim);
  out = out.reshape(out_shape);
  const Shape in_shape = a.shape();
  return record(out, "sum", {a}, [=](const Tensor& g) {
    Shape kept = in_shape;
    kept[static_cast<size_t>(dim)] = 1;
    return std::vector<Tensor>{ops::expand(g.reshape(kept), in_shape).contiguous()};
  });
}

}  // namespace minivlm::cuda
