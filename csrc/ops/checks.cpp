#include "ops/checks.h"

namespace minivlm::ops::detail {

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  MV_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch between ", a.desc(), " and ", b.desc());
}

void check_shape(const char* op, const char* what, const Tensor& t, const Shape& expected) {
  MV_CHECK(t.shape() == expected, op, ": ", what, " has shape ", shape_str(t.shape()),
           ", expected ", shape_str(expected));
}

Backend& backend_of(const char* op, std::initializer_list<const Tensor*> inputs) {
  const Tensor& first = **inputs.begin();
  for (const Tensor* t : inputs) {
    MV_CHECK(t->defined(), op, ": undefined input tensor");
    MV_CHECK(t->device() == first.device(), op, ": inputs on different devices: ", first.desc(),
             " and ", t->desc());
  }
  return backend_for(first.device());
}

std::vector<int64_t> index_values(const char* op, const char* what, const Tensor& idx) {
  MV_CHECK(idx.defined() && (idx.dtype() == DType::i32 || idx.dtype() == DType::i64), op, ": ",
           what, " must be an i32 or i64 tensor, got ", idx.defined() ? idx.desc() : "undefined");
  return idx.to_int_vector();
}

}  // namespace minivlm::ops::detail
