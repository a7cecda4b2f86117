// Element-wise arithmetic with numpy broadcasting, and reductions.
#include <omp.h>

#include <algorithm>

#include "autograd/node.h"
#include "cpu/parallel_ranges.h"
#include "cuda/ops.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace minivlm::ops {

using detail::check_cpu;
using detail::dispatch_float;

namespace {

enum class Binary { add, sub, mul };

// Calls f(op) with op a function object for the kind, so each loop body is branch-free.
template <typename F>
void with_binary(Binary kind, F&& f) {
  switch (kind) {
    case Binary::add:
      return f([](auto x, auto y) { return x + y; });
    case Binary::sub:
      return f([](auto x, auto y) { return x - y; });
    case Binary::mul:
      return f([](auto x, auto y) { return x * y; });
  }
}

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

Tensor binary(Binary kind, const char* op, const Tensor& a, const Tensor& b) {
  if (a.device().is_cuda_backend()) {
    return kind == Binary::add   ? cuda::add(a, b)
           : kind == Binary::sub ? cuda::sub(a, b)
                                 : cuda::mul(a, b);
  }
  check_cpu(op, a);
  check_cpu(op, b);
  detail::check_same_dtype(op, a, b);
  const Shape shape = broadcast_shapes(op, a.shape(), b.shape());
  // An operand that repeats along leading dimensions only (a bias [out] added to [N, out]) is read
  // in place, row by row, instead of first being copied out to the full shape.
  const int64_t b_inner = a.shape() == shape ? suffix_broadcast(b.shape(), shape) : -1;
  const Tensor ac = (a.shape() == shape ? a : expand(a.detach(), shape)).contiguous();
  const Tensor bc = b_inner > 0 ? b.contiguous()
                                : (b.shape() == shape ? b : expand(b.detach(), shape)).contiguous();
  Tensor out = Tensor::empty(shape, a.dtype());
  dispatch_float(op, a, [&](auto zero) {
    using T = decltype(zero);
    const T* pa = ac.data<T>();
    const T* pb = bc.data<T>();
    T* po = out.data<T>();
    const int64_t n = out.numel();
    with_binary(kind, [&](auto f) {
      if (b_inner > 0 && b_inner < n) {
        const int64_t inner = b_inner;
        cpu::parallel_ranges(n / inner, 32768 / inner + 1, [&](int64_t r0, int64_t r1) {
          const T* __restrict a_ = pa;
          const T* __restrict b_ = pb;
          T* __restrict o_ = po;
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t i = 0; i < inner; ++i) o_[r * inner + i] = f(a_[r * inner + i], b_[i]);
        });
      } else {
        cpu::parallel_ranges(n, 32768, [&](int64_t i0, int64_t i1) {
          const T* __restrict a_ = pa;
          const T* __restrict b_ = pb;
          T* __restrict o_ = po;
          for (int64_t i = i0; i < i1; ++i) o_[i] = f(a_[i], b_[i]);
        });
      }
    });
  });
  const Shape sa = a.shape(), sb = b.shape();
  const Tensor a_saved = kind == Binary::mul ? a.detach() : Tensor();
  const Tensor b_saved = kind == Binary::mul ? b.detach() : Tensor();
  return record(out, op, {a, b}, [=](const Tensor& g) {
    switch (kind) {
      case Binary::add:
        return std::vector<Tensor>{reduce_to_shape(g, sa), reduce_to_shape(g, sb)};
      case Binary::sub:
        return std::vector<Tensor>{reduce_to_shape(g, sa), reduce_to_shape(scale(g, -1.0), sb)};
      case Binary::mul:
        return std::vector<Tensor>{reduce_to_shape(mul(g, b_saved), sa),
                                   reduce_to_shape(mul(g, a_saved), sb)};
    }
    return std::vector<Tensor>{};
  });
}

}  // namespace

Tensor expand(const Tensor& a, const Shape& shape) {
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
  Tensor out = make_view(a, shape, st, a.offset());
  const Shape in_shape = a.shape();
  return record(out, "expand", {a}, [in_shape](const Tensor& g) {
    return std::vector<Tensor>{reduce_to_shape(g, in_shape)};
  });
}

Tensor add(const Tensor& a, const Tensor& b) { return binary(Binary::add, "add", a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(Binary::sub, "sub", a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(Binary::mul, "mul", a, b); }

Tensor scale(const Tensor& a, double s) {
  if (a.device().is_cuda_backend()) return cuda::scale(a, s);
  check_cpu("scale", a);
  const Tensor ac = a.contiguous();
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  dispatch_float("scale", a, [&](auto zero) {
    using T = decltype(zero);
    const T* p = ac.data<T>();
    T* o = out.data<T>();
    const T f = static_cast<T>(s);
    const int64_t n = out.numel();
#pragma omp parallel for if (n > 32768) schedule(static)
    for (int64_t i = 0; i < n; ++i) o[i] = p[i] * f;
  });
  return record(out, "scale", {a},
                [s](const Tensor& g) { return std::vector<Tensor>{scale(g, s)}; });
}

Tensor reduce_to_shape(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  Tensor r = g;
  while (r.dim() > static_cast<int64_t>(shape.size())) r = sum(r, 0, false);
  for (int64_t d = 0; d < r.dim(); ++d) {
    if (shape[d] == 1 && r.shape()[d] != 1) r = sum(r, d, true);
  }
  MV_CHECK(r.shape() == shape, "reduce_to_shape: cannot reduce ", shape_str(g.shape()), " to ",
           shape_str(shape));
  return r;
}

Tensor sum(const Tensor& a, int64_t dim, bool keepdim) {
  if (a.device().is_cuda_backend()) return cuda::sum(a, dim, keepdim);
  check_cpu("sum", a);
  dim = wrap_dim(dim, a.dim());
  const Tensor ac = a.contiguous();
  int64_t outer = 1, inner = 1;
  const int64_t n = a.shape()[dim];
  for (int64_t i = 0; i < dim; ++i) outer *= a.shape()[i];
  for (int64_t i = dim + 1; i < a.dim(); ++i) inner *= a.shape()[i];
  Shape out_shape = a.shape();
  out_shape[dim] = 1;
  Tensor out = Tensor::empty(out_shape, a.dtype());
  dispatch_float("sum", a, [&](auto zero) {
    using T = decltype(zero);
    const T* p = ac.data<T>();
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
  if (!keepdim) out_shape.erase(out_shape.begin() + dim);
  out = out.reshape(out_shape);
  const Shape in_shape = a.shape();
  return record(out, "sum", {a}, [=](const Tensor& g) {
    Shape kept = in_shape;
    kept[dim] = 1;
    return std::vector<Tensor>{expand(g.reshape(kept), in_shape).contiguous()};
  });
}

Tensor sum(const Tensor& a) {
  const Tensor flat = a.reshape({a.numel()});
  return sum(flat, 0, false);
}

Tensor mean(const Tensor& a) {
  return scale(sum(a), 1.0 / static_cast<double>(std::max<int64_t>(a.numel(), 1)));
}

Tensor mean(const Tensor& a, int64_t dim, bool keepdim) {
  const int64_t n = a.size(dim);
  return scale(sum(a, dim, keepdim), 1.0 / static_cast<double>(std::max<int64_t>(n, 1)));
}

}  // namespace minivlm::ops
