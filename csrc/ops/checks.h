// Argument checks shared by the op front-ends, and the back-end their inputs compute on. Every
// message names the op and the offending tensor (dtype, shape, device).
#pragma once
#include <initializer_list>
#include <vector>

#include "core/backend.h"
#include "core/tensor.h"

namespace minivlm::ops::detail {

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_shape(const char* op, const char* what, const Tensor& t, const Shape& expected);
// The back-end of the first input's device, after checking that every input is defined and on
// that device.
Backend& backend_of(const char* op, std::initializer_list<const Tensor*> inputs);
// An index list (ids, targets, rows) as host values: a 1-D or N-D integer tensor on any device.
std::vector<int64_t> index_values(const char* op, const char* what, const Tensor& idx);

}  // namespace minivlm::ops::detail
