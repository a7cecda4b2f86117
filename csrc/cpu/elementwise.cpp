// Element-wise arithmetic with broadcasting, scaling, sums over a dimension and the bias add.
#include <algorithm>

#include "cpu/activation_math.h"
#include "cpu/backend.h"
#include "cpu/parallel_ranges.h"

namespace minivlm::cpu {

namespace {

// The number of trailing elements `small` spans when it broadcasts to `full` along leading
// dimensions only (its shape, leading 1s dropped, is a suffix of full's); −1 otherwise.
int64_t suffix_broadcast(const Shape& small, const Shape& full) {
  size_t lead = 0;
  while (lead < small.size() && small[lead] == 1) ++lead;
  const size_t rank = small.size() - lead;
  if (rank > full.size()) return -1;
  int64_t inner = 1;
  for (size_t i = 0; i < rank; ++i) {
    if (small[lead + i] != full[full.size() - rank + i]) return -1;
    inner *= small[lead + i];
  }
  return inner;
}

}  // namespace

Tensor CpuBackend::binary(BinaryOp kind, const Tensor& a, const Tensor& b, const Shape& shape) {
  // An operand that repeats along leading dimensions only (a bias [out] added to [N, out]) is read
  // in place, row by row, instead of first being copied out to the full shape.
  const int64_t b_inner = a.shape() == shape ? suffix_broadcast(b.shape(), shape) : -1;
  const Tensor ac = (a.shape() == shape ? a : broadcast_view(a, shape)).contiguous();
  const Tensor bc = b_inner > 0 ? b.contiguous()
                                : (b.shape() == shape ? b : broadcast_view(b, shape)).contiguous();
  Tensor out = Tensor::empty(shape, a.dtype());
  dispatch_float("binary", a, [&](auto zero) {
    using T = decltype(zero);
    const T* pa = ac.data<T>();
    const T* pb = bc.data<T>();
    T* po = out.data<T>();
    const int64_t n = out.numel();
    with_binary(kind, [&](auto f) {
      if (b_inner > 0 && b_inner < n) {
        const int64_t inner = b_inner;
        parallel_ranges(n / inner, 32768 / inner + 1, [&](int64_t r0, int64_t r1) {
          const T* __restrict a_ = pa;
          const T* __restrict b_ = pb;
          T* __restrict o_ = po;
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t i = 0; i < inner; ++i) o_[r * inner + i] = f(a_[r * inner + i], b_[i]);
        });
      } else {
        parallel_ranges(n, 32768, [&](int64_t i0, int64_t i1) {
          const T* __restrict a_ = pa;
          const T* __restrict b_ = pb;
          T* __restrict o_ = po;
          for (int64_t i = i0; i < i1; ++i) o_[i] = f(a_[i], b_[i]);
        });
      }
    });
  });
  return out;
}

Tensor CpuBackend::scale(const Tensor& a, double s) {
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  dispatch_float("scale", a, [&](auto zero) {
    using T = decltype(zero);
    const T* p = a.data<T>();
    T* o = out.data<T>();
    const T f = static_cast<T>(s);
    const int64_t n = out.numel();
#pragma omp parallel for if (n > 32768) schedule(static)
    for (int64_t i = 0; i < n; ++i) o[i] = p[i] * f;
  });
  return out;
}

Tensor CpuBackend::sum_dim(const Tensor& a, int64_t dim) {
  int64_t outer = 1, inner = 1;
  const int64_t n = a.shape()[dim];
  for (int64_t i = 0; i < dim; ++i) outer *= a.shape()[i];
  for (int64_t i = dim + 1; i < a.dim(); ++i) inner *= a.shape()[i];
  Shape out_shape = a.shape();
  out_shape[dim] = 1;
  Tensor out = Tensor::empty(out_shape, a.dtype());
  dispatch_float("sum", a, [&](auto zero) {
    using T = decltype(zero);
    const T* p = a.data<T>();
    T* o = out.data<T>();
    // Each output sums its n inputs in order k = 0, 1, ...; blocks of kBlock neighbouring
    // outputs are accumulated together so that the inputs are read row by row, not down columns.
    constexpr int64_t kBlock = 256;
    const int64_t blocks = (inner + kBlock - 1) / kBlock;
#pragma omp parallel for collapse(2) if (outer * inner > 4096) schedule(static)
    for (int64_t i = 0; i < outer; ++i) {
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t j0 = b * kBlock, len = std::min(kBlock, inner - j0);
        double acc[kBlock] = {};
        for (int64_t k = 0; k < n; ++k) {
          const T* row = p + (i * n + k) * inner + j0;
#pragma omp simd
          for (int64_t j = 0; j < len; ++j) acc[j] += row[j];
        }
        for (int64_t j = 0; j < len; ++j) o[i * inner + j0 + j] = static_cast<T>(acc[j]);
      }
    }
  });
  return out;
}

void CpuBackend::add_bias_(const Tensor& y, const Tensor& bias) {
  const int64_t n = y.size(-1), rows = n == 0 ? 0 : y.numel() / n;
  dispatch_float("linear", y, [&](auto zero) {
    using T = decltype(zero);
    const T* pb = bias.data<T>();
    T* py = y.data<T>();
#pragma omp parallel for if (rows * n > 32768) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) py[r * n + i] += pb[i];
    }
  });
}

}  // namespace minivlm::cpu
