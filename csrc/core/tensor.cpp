#include "core/tensor.h"

#include <array>
#include <cmath>
#include <cstring>

#include "core/strided.h"

namespace minivlm {

Storage::~Storage() {
  if (data != nullptr && owner == nullptr) allocator_for(device).deallocate(data);
}

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
  auto s = std::make_shared<Storage>();
  s->data = allocator_for(device).allocate(nbytes);
  s->nbytes = nbytes;
  s->device = device;
  return s;
}

std::shared_ptr<Storage> Storage::borrow(void* data, size_t nbytes, Device device,
                                         std::shared_ptr<void> owner) {
  MV_CHECK(owner != nullptr, "borrowed storage needs an owner");
  auto s = std::make_shared<Storage>();
  s->data = data;
  s->nbytes = nbytes;
  s->device = device;
  s->owner = std::move(owner);
  return s;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) MV_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage =
      Storage::allocate(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

namespace {
template <typename V>
Tensor from_host_values(const std::vector<V>& v, const Shape& shape, DType dtype) {
  MV_CHECK(static_cast<int64_t>(v.size()) == shape_numel(shape), "from_vector: ", v.size(),
           " values do not fill shape ", shape_str(shape));
  Tensor t = Tensor::empty(shape, dtype_of<V>::value);
  if (!v.empty()) std::memcpy(t.raw_data(), v.data(), v.size() * sizeof(V));
  return dtype == t.dtype() ? t : t.to(dtype);
}
}  // namespace

Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& shape, DType dtype) {
  return from_host_values(v, shape, dtype);
}
Tensor Tensor::from_vector(const std::vector<double>& v, const Shape& shape, DType dtype) {
  return from_host_values(v, shape, dtype);
}
Tensor Tensor::from_vector(const std::vector<int32_t>& v, const Shape& shape) {
  return from_host_values(v, shape, DType::i32);
}
Tensor Tensor::from_vector(const std::vector<int64_t>& v, const Shape& shape) {
  return from_host_values(v, shape, DType::i64);
}

Tensor Tensor::arange(int64_t n, DType dtype) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<double>(i);
  return from_vector(v, {n}, dtype);
}

bool Tensor::is_contiguous() const {
  const auto& s = impl().shape;
  const auto& st = impl().strides;
  int64_t expect = 1;
  for (size_t i = s.size(); i-- > 0;) {
    if (s[i] == 1) continue;
    if (st[i] != expect) return false;
    expect *= s[i];
  }
  return true;
}

std::string Tensor::desc() const {
  if (!defined()) return "undefined";
  return detail::str_cat(dtype_name(dtype()), shape_str(shape()), " on ", device().str());
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl().storage->data) +
         impl().offset * static_cast<int64_t>(dtype_size(impl().dtype));
}

namespace {

std::array<DeviceCopyFn, 3>& device_copies() {
  static std::array<DeviceCopyFn, 3> fns{};
  return fns;
}

// dst ← src on one device (any strides and dtypes the back-end converts); false when it does not.
bool device_copy(const Tensor& dst, const Tensor& src) {
  const DeviceCopyFn fn = device_copies()[static_cast<size_t>(dst.device().type)];
  MV_CHECK(fn != nullptr, "copy_: device ", dst.device().str(),
           " has no strided copy (is its back-end linked?)");
  return fn(dst, src);
}

// A contiguous copy of t on its own device, in its own dtype (t itself when already contiguous).
Tensor contiguous_here(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor out = Tensor::empty(t.shape(), t.dtype(), t.device());
  if (t.device().is_cpu()) {
    detail::strided_convert(t, out);
  } else {
    MV_CHECK(device_copy(out, t), "copy_: ", t.desc(), " cannot be gathered on its device");
  }
  return out;
}

// A contiguous host copy of any tensor, in its own dtype: gathered where it lives, then moved.
Tensor host_contiguous(const Tensor& t) {
  const Tensor c = contiguous_here(t);
  if (c.device().is_cpu()) return c;
  Tensor out = Tensor::empty(t.shape(), t.dtype(), kCPU);
  out.copy_(c);
  return out;
}
template <typename V>
std::vector<V> host_values(const Tensor& t) {
  Tensor c = Tensor::empty(t.shape(), dtype_of<V>::value, kCPU);
  c.copy_(t);
  return std::vector<V>(c.data<V>(), c.data<V>() + c.numel());
}
}  // namespace

void register_device_copy(DeviceType type, DeviceCopyFn fn) {
  device_copies()[static_cast<size_t>(type)] = fn;
}

std::vector<float> Tensor::to_float_vector() const { return host_values<float>(*this); }
std::vector<double> Tensor::to_double_vector() const { return host_values<double>(*this); }

Tensor::OutOfRange Tensor::out_of_range(double limit) const {
  OutOfRange r;
  if (!is_floating(dtype()) || numel() == 0) return r;
  const auto visit = [&](int64_t i, double x) {
    if (std::isfinite(x) && std::abs(x) <= limit) return;
    if (r.count++ == 0) {
      r.first_index = i;
      r.first_value = x;
    }
  };
  if (dtype() == DType::f32 && device().is_cpu() && is_contiguous()) {
    const float* v = data<float>();
    for (int64_t i = 0; i < numel(); ++i) visit(i, v[i]);
  } else {
    const std::vector<float> v = to_float_vector();
    for (size_t i = 0; i < v.size(); ++i) visit(static_cast<int64_t>(i), v[i]);
  }
  return r;
}
std::vector<int64_t> Tensor::to_int_vector() const { return host_values<int64_t>(*this); }

double Tensor::item() const {
  MV_CHECK(numel() == 1, "item() needs a one-element tensor, got ", desc());
  return to_double_vector()[0];
}

void Tensor::copy_(const Tensor& src) {
  MV_CHECK(src.shape() == shape(), "copy_: source ", src.desc(), " does not match destination ",
           desc());
  if (numel() == 0) return;
  const bool same_layout = dtype() == src.dtype() && is_contiguous() && src.is_contiguous();
  if (device().is_cpu() && src.device().is_cpu()) {
    if (same_layout) {
      std::memmove(raw_data(), src.raw_data(), nbytes());
      return;
    }
    detail::strided_convert(src, *this);
    return;
  }
  // At least one side is on a device: contiguous bytes of one dtype move as they are.
  if (same_layout) {
    if (src.device().is_cpu()) {
      allocator_for(device()).copy_from_host(raw_data(), src.raw_data(), nbytes());
    } else if (device().is_cpu()) {
      allocator_for(src.device()).copy_to_host(raw_data(), src.raw_data(), nbytes());
    } else if (device() == src.device()) {
      allocator_for(device()).copy_on_device(raw_data(), src.raw_data(), nbytes());
    } else {
      copy_(host_contiguous(src));
    }
    return;
  }
  // Other layouts or dtypes: gather src where it lives, move the bytes, then scatter and convert
  // where the destination lives (a device kernel, or the host loop).
  if (device().is_cpu()) {
    detail::strided_convert(host_contiguous(src), *this);
    return;
  }
  Tensor here = src;
  if (src.device() != device()) {
    here = Tensor::empty(shape(), src.dtype(), device());
    here.copy_(host_contiguous(src));
  }
  if (device_copy(*this, here)) return;
  // A dtype pair the device does not convert: convert on the host, copy back in dst's dtype.
  Tensor h = Tensor::empty(shape(), dtype(), kCPU);
  detail::strided_convert(host_contiguous(here), h);
  Tensor d = Tensor::empty(shape(), dtype(), device());
  d.copy_(h);
  MV_CHECK(device_copy(*this, d), "copy_: ", desc(), " cannot be written on its device");
}

void Tensor::fill_(double value) {
  if (numel() == 0) return;
  if (device().is_cpu()) {
    detail::strided_fill(*this, value);
    return;
  }
  // One value uploaded, broadcast over the destination by the device copy (stride 0).
  const Tensor one = Tensor::full({}, value, dtype(), kCPU).to(device());
  copy_(make_view(one, shape(), Shape(shape().size(), 0), one.offset()));
}

Tensor& Tensor::set_requires_grad(bool r) {
  MV_CHECK(!r || is_floating(dtype()), "requires_grad on a non-floating tensor ", desc());
  MV_CHECK(!r || is_leaf(), "set_requires_grad on a non-leaf tensor; use detach() first");
  impl().requires_grad = r;
  return *this;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = this->impl().storage;
  impl->offset = offset();
  impl->shape = shape();
  impl->strides = strides();
  impl->dtype = dtype();
  impl->name = name();
  return Tensor(std::move(impl));
}

void Tensor::set_data(const Tensor& src) {
  MV_CHECK(is_leaf() && src.defined(), "set_data: ", desc(), " is not a leaf");
  MV_CHECK(!src.requires_grad() || src.is_leaf(), "set_data: the source must be a leaf");
  TensorImpl& i = impl();
  i.storage = src.storage();
  i.offset = src.offset();
  i.shape = src.shape();
  i.strides = src.strides();
  i.dtype = src.dtype();
  i.grad.reset();
}

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->offset = offset;
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

Tensor broadcast_view(const Tensor& a, const Shape& shape) {
  MV_CHECK(shape.size() >= a.shape().size(), "expand: cannot expand ", shape_str(a.shape()), " to ",
           shape_str(shape));
  const size_t lead = shape.size() - a.shape().size();
  Shape st(shape.size(), 0);
  for (size_t i = 0; i < a.shape().size(); ++i) {
    const int64_t d = a.shape()[i];
    MV_CHECK(d == shape[lead + i] || d == 1, "expand: cannot expand ", shape_str(a.shape()), " to ",
             shape_str(shape));
    st[lead + i] = d == 1 ? 0 : a.strides()[i];
  }
  return make_view(a, shape, st, a.offset());
}

}  // namespace minivlm
