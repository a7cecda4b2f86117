// Helpers shared by op front-ends: dtype dispatch and argument checks.
#pragma once
#include "core/tensor.h"

namespace minivlm::ops::detail {

// Calls f(T{}) with T = float or double for the tensor's dtype; other dtypes are an error naming
// op.
template <typename F>
decltype(auto) dispatch_float(const char* op, const Tensor& t, F&& f) {
  switch (t.dtype()) {
    case DType::f32:
      return f(float{});
    case DType::f64:
      return f(double{});
    default:
      MV_FAIL(op, ": unsupported dtype ", dtype_name(t.dtype()),
              " (the CPU back-end computes in f32 or f64; convert with to())");
  }
}

// The CPU back-end is the only one wired into these front-ends so far; other devices get an error
// that names the op instead of touching device memory from the host.
void check_cpu(const char* op, const Tensor& t);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_shape(const char* op, const char* what, const Tensor& t, const Shape& expected);

}  // namespace minivlm::ops::detail
