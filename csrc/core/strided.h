// Element-wise loops over strided CPU tensors of any dtype (copies with conversion, fills).
#pragma once
#include "core/tensor.h"

namespace minivlm::detail {

// dst[i] = convert(src[i]) for every index; shapes must match; both on the CPU.
void strided_convert(const Tensor& src, const Tensor& dst);
void strided_fill(const Tensor& dst, double value);

// Calls f(offset_a, offset_b) for every multi-index of `shape`, offsets in elements.
template <typename F>
void for_each_offset2(const Shape& shape, const Shape& sa, int64_t oa, const Shape& sb, int64_t ob,
                      F&& f) {
  const size_t nd = shape.size();
  if (nd == 0) {
    f(oa, ob);
    return;
  }
  for (int64_t d : shape)
    if (d == 0) return;
  std::vector<int64_t> idx(nd, 0);
  const int64_t inner = shape[nd - 1], ia = sa[nd - 1], ib = sb[nd - 1];
  while (true) {
    for (int64_t i = 0; i < inner; ++i) f(oa + i * ia, ob + i * ib);
    // advance the outer index
    size_t d = nd - 1;
    while (true) {
      if (d == 0) return;
      --d;
      ++idx[d];
      oa += sa[d];
      ob += sb[d];
      if (idx[d] < shape[d]) break;
      oa -= sa[d] * shape[d];
      ob -= sb[d] * shape[d];
      idx[d] = 0;
    }
  }
}

}  // namespace minivlm::detail
