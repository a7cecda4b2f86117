// Tensor: a strided view of shared storage, with autograd metadata.
//
// Copying a Tensor is cheap (it shares the implementation). Views (reshape, transpose, permute,
// slice, narrow) share storage; contiguous() copies only when needed. Shape-changing methods are
// autograd-aware (they are ops; see ops/view_ops.cpp).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <limits>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"

namespace minivlm {

struct Node;

// Bytes owned by one device allocation, or borrowed (e.g. an mmap'd file kept alive by `owner`).
struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  std::shared_ptr<void> owner;  // non-null for borrowed memory; keeps it alive
  ~Storage();
  static std::shared_ptr<Storage> allocate(size_t nbytes, Device device);
  static std::shared_ptr<Storage> borrow(void* data, size_t nbytes, Device device,
                                         std::shared_ptr<void> owner);
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;
  DType dtype = DType::f32;
  // autograd
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient (leaves)
  std::shared_ptr<Node> grad_fn;     // the op that produced this tensor (non-leaves)
  std::string name;                  // optional, for error messages (parameter names)
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // --- creation ---
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = kCPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = kCPU);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = kCPU);
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = kCPU) {
    return full(shape, 1.0, dtype, device);
  }
  // Copies host values into a new tensor of `dtype` (converted element-wise).
  static Tensor from_vector(const std::vector<float>& v, const Shape& shape,
                            DType dtype = DType::f32);
  static Tensor from_vector(const std::vector<double>& v, const Shape& shape,
                            DType dtype = DType::f64);
  static Tensor from_vector(const std::vector<int32_t>& v, const Shape& shape);
  static Tensor from_vector(const std::vector<int64_t>& v, const Shape& shape);
  static Tensor arange(int64_t n, DType dtype = DType::i64);

  // --- metadata ---
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const { return impl().shape[wrap_dim(d, dim())]; }
  int64_t stride(int64_t d) const { return impl().strides[wrap_dim(d, dim())]; }
  int64_t numel() const { return shape_numel(impl().shape); }
  int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  std::string name() const { return impl().name; }
  void set_name(const std::string& n) { impl().name = n; }
  // "f32[2, 3] on cpu": for messages.
  std::string desc() const;

  // --- data access (contiguous or strided; pointer at offset) ---
  void* raw_data() const;
  template <typename T>
  T* data() const {
    MV_CHECK(dtype() == dtype_of<T>::value, "data<", dtype_name(dtype_of<T>::value),
             ">() called on a ", desc(), " tensor");
    return static_cast<T*>(raw_data());
  }
  // Host copies converted to float / double / int64 (any dtype, any device, any strides).
  std::vector<float> to_float_vector() const;
  std::vector<double> to_double_vector() const;
  std::vector<int64_t> to_int_vector() const;
  double item() const;  // a one-element tensor's value
  // Values that are NaN, infinite or beyond ±limit (floating dtypes; others have none): their
  // count and the first one in row-major order.
  struct OutOfRange {
    int64_t count = 0;
    int64_t first_index = -1;
    double first_value = 0;
  };
  OutOfRange out_of_range(double limit = std::numeric_limits<double>::infinity()) const;

  // --- views and copies (autograd-aware) ---
  Tensor reshape(const Shape& shape) const;  // a view when possible; -1 infers one dimension
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;  // drops `dim`
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;

  // --- in-place (not recorded by autograd; for optimizers, init, loading) ---
  void copy_(const Tensor& src);  // same shape; converts dtype and device; any strides
  void fill_(double value);
  void zero_() { fill_(0.0); }
  // Points this tensor at src's storage, shape, strides and dtype (PyTorch's `param.data = src`):
  // every handle sharing this tensor sees the change, its name and requires_grad stay, its
  // gradient is dropped. For leaves only (moving parameters to another device or dtype).
  void set_data(const Tensor& src);

  // --- autograd ---
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& set_requires_grad(bool r);
  Tensor grad() const { return Tensor(impl().grad); }
  void set_grad(const Tensor& g) { impl().grad = g.impl_; }
  void zero_grad() { impl().grad.reset(); }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  // Same storage, no history: the result is a leaf that does not require grad.
  Tensor detach() const;
  // Backpropagates from this tensor (a scalar unless `grad_output` is given), then frees the graph.
  void backward(const Tensor& grad_output = Tensor(), bool retain_graph = false) const;

  TensorImpl& impl() const {
    MV_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// A new tensor viewing `base`'s storage with another shape/strides/offset (no autograd).
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);
// `a` broadcast to `shape` as a view (stride 0 along repeated dimensions; no autograd); throws
// naming both shapes when a does not broadcast to it.
Tensor broadcast_view(const Tensor& a, const Shape& shape);

// How a back-end copies between two tensors on one of its devices, with any strides, converting
// the dtype (dst and src have the same shape and device). Returns false for a pair of dtypes it
// does not convert; a copy between equal dtypes must always succeed. Registered at static-init
// time by the back-end; copy_ uses it for every device copy that is not one contiguous move.
using DeviceCopyFn = bool (*)(const Tensor& dst, const Tensor& src);
void register_device_copy(DeviceType type, DeviceCopyFn fn);

}  // namespace minivlm
