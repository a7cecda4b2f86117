#include "ops/dispatch.h"

namespace minivlm::ops::detail {

void check_cpu(const char* op, const Tensor& t) {
  MV_CHECK(t.defined(), op, ": undefined input tensor");
  MV_CHECK(t.device().is_cpu(), op, ": no implementation for device ", t.device().str(), " (input ",
           t.desc(), ")");
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  MV_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch between ", a.desc(), " and ", b.desc());
}

void check_shape(const char* op, const char* what, const Tensor& t, const Shape& expected) {
  MV_CHECK(t.shape() == expected, op, ": ", what, " has shape ", shape_str(t.shape()),
           ", expected ", shape_str(expected));
}

}  // namespace minivlm::ops::detail
