// Tensor's view and copy methods. Views share storage; each records a node whose backward maps the
// gradient back to the input's shape.
#include <numeric>

#include "autograd/node.h"
#include "ops/ops.h"

namespace minivlm {

namespace {

Shape infer_shape(const Shape& requested, int64_t numel, const Shape& from) {
  Shape s = requested;
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      MV_CHECK(infer_at < 0, "reshape ", shape_str(from), " → ", shape_str(requested),
               ": more than one -1");
      infer_at = static_cast<int64_t>(i);
    } else {
      MV_CHECK(s[i] >= 0, "reshape to ", shape_str(requested), ": negative dimension");
      known *= s[i];
    }
  }
  if (infer_at >= 0) {
    MV_CHECK(known != 0 && numel % known == 0, "cannot reshape ", shape_str(from), " into ",
             shape_str(requested));
    s[static_cast<size_t>(infer_at)] = numel / known;
  }
  MV_CHECK(shape_numel(s) == numel, "cannot reshape ", shape_str(from), " (", numel,
           " elements) into ", shape_str(requested));
  return s;
}

}  // namespace

Tensor Tensor::reshape(const Shape& shape) const {
  const Shape target = infer_shape(shape, numel(), this->shape());
  if (target == this->shape()) return *this;
  Tensor src = is_contiguous() ? *this : contiguous();
  Tensor out = make_view(src, target, contiguous_strides(target), src.offset());
  const Shape in_shape = this->shape();
  return record(out, "reshape", {*this},
                [in_shape](const Tensor& g) { return std::vector<Tensor>{g.reshape(in_shape)}; });
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  a = wrap_dim(a, dim());
  b = wrap_dim(b, dim());
  Shape sh = shape(), st = strides();
  std::swap(sh[a], sh[b]);
  std::swap(st[a], st[b]);
  Tensor out = make_view(*this, sh, st, offset());
  return record(out, "transpose", {*this},
                [a, b](const Tensor& g) { return std::vector<Tensor>{g.transpose(a, b)}; });
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  MV_CHECK(static_cast<int64_t>(dims.size()) == dim(), "permute: ", dims.size(),
           " dimensions given for a tensor of shape ", shape_str(shape()));
  Shape sh(dims.size()), st(dims.size());
  std::vector<int64_t> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], dim());
    MV_CHECK(inverse[d] < 0, "permute: dimension ", d, " repeated");
    inverse[d] = static_cast<int64_t>(i);
    sh[i] = shape()[d];
    st[i] = strides()[d];
  }
  Tensor out = make_view(*this, sh, st, offset());
  return record(out, "permute", {*this},
                [inverse](const Tensor& g) { return std::vector<Tensor>{g.permute(inverse)}; });
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, dim());
  const int64_t n = shape()[d];
  MV_CHECK(step > 0, "slice: step must be positive, got ", step);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape sh = shape(), st = strides();
  sh[d] = (end - start + step - 1) / step;
  st[d] *= step;
  Tensor out = make_view(*this, sh, st, offset() + start * strides()[d]);
  const Shape in_shape = shape();
  const DType dt = dtype();
  const Device dev = device();
  return record(out, "slice", {*this}, [=](const Tensor& g) {
    Tensor full = Tensor::zeros(in_shape, dt, dev);
    full.slice(d, start, end, step).copy_(g);
    return std::vector<Tensor>{full};
  });
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim());
  MV_CHECK(start >= 0 && length >= 0 && start + length <= shape()[d], "narrow(", d, ", ", start,
           ", ", length, ") out of range for shape ", shape_str(shape()));
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim());
  MV_CHECK(index >= -shape()[d] && index < shape()[d], "select: index ", index,
           " out of range for dimension ", d, " of shape ", shape_str(shape()));
  if (index < 0) index += shape()[d];
  return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1);
  Shape sh = shape();
  sh.insert(sh.begin() + d, 1);
  Shape st = strides();
  st.insert(st.begin() + d, d < dim() ? strides()[d] * shape()[d] : 1);
  Tensor out = make_view(*this, sh, st, offset());
  return record(out, "unsqueeze", {*this},
                [d](const Tensor& g) { return std::vector<Tensor>{g.squeeze(d)}; });
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim());
  MV_CHECK(shape()[d] == 1, "squeeze: dimension ", d, " of shape ", shape_str(shape()),
           " is not 1");
  Shape sh = shape(), st = strides();
  sh.erase(sh.begin() + d);
  st.erase(st.begin() + d);
  Tensor out = make_view(*this, sh, st, offset());
  return record(out, "squeeze", {*this},
                [d](const Tensor& g) { return std::vector<Tensor>{g.unsqueeze(d)}; });
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(shape(), dtype(), device());
  out.copy_(*this);
  return record(out, "clone", {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor Tensor::to(DType t) const { return t == dtype() ? *this : ops::cast(*this, t); }

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  Tensor out = Tensor::empty(shape(), dtype(), d);
  out.copy_(*this);
  const Device from = device();
  return record(out, "to_device", {*this},
                [from](const Tensor& g) { return std::vector<Tensor>{g.to(from)}; });
}

namespace ops {

Tensor cast(const Tensor& x, DType t) {
  Tensor out = Tensor::empty(x.shape(), t, x.device());
  out.copy_(x);
  if (!is_floating(t)) return out;
  const DType from = x.dtype();
  return record(out, "cast", {x},
                [from](const Tensor& g) { return std::vector<Tensor>{g.to(from)}; });
}

}  // namespace ops
}  // namespace minivlm
