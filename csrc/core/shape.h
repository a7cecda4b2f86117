// Shapes and strides (in elements), and their formatting for error messages.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace minivlm {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);  // "[2, 3, 4]"
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
// The numpy broadcast of two shapes; throws naming `op` and both shapes when they do not broadcast.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);
// Wraps a possibly negative dimension index; throws naming the rank when out of range.
int64_t wrap_dim(int64_t d, int64_t rank);

}  // namespace minivlm
