// Element-wise arithmetic with numpy broadcasting, and reductions.
#include <algorithm>

#include "autograd/node.h"
#include "ops/checks.h"
#include "ops/ops.h"

namespace minivlm::ops {

namespace {

Tensor binary(BinaryOp kind, const char* op, const Tensor& a, const Tensor& b) {
  Backend& be = detail::backend_of(op, {&a, &b});
  detail::check_same_dtype(op, a, b);
  const Shape shape = broadcast_shapes(op, a.shape(), b.shape());
  Tensor out = be.binary(kind, a.detach(), b.detach(), shape);
  const Shape sa = a.shape(), sb = b.shape();
  const Tensor a_saved = kind == BinaryOp::mul ? a.detach() : Tensor();
  const Tensor b_saved = kind == BinaryOp::mul ? b.detach() : Tensor();
  return record(out, op, {a, b}, [=](const Tensor& g) {
    switch (kind) {
      case BinaryOp::add:
        return std::vector<Tensor>{reduce_to_shape(g, sa), reduce_to_shape(g, sb)};
      case BinaryOp::sub:
        return std::vector<Tensor>{reduce_to_shape(g, sa), reduce_to_shape(scale(g, -1.0), sb)};
      case BinaryOp::mul:
        return std::vector<Tensor>{reduce_to_shape(mul(g, b_saved), sa),
                                   reduce_to_shape(mul(g, a_saved), sb)};
    }
    return std::vector<Tensor>{};
  });
}

}  // namespace

Tensor expand(const Tensor& a, const Shape& shape) {
  Tensor out = broadcast_view(a, shape);
  const Shape in_shape = a.shape();
  return record(out, "expand", {a}, [in_shape](const Tensor& g) {
    return std::vector<Tensor>{reduce_to_shape(g, in_shape)};
  });
}

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::add, "add", a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::sub, "sub", a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::mul, "mul", a, b); }

Tensor scale(const Tensor& a, double s) {
  Backend& be = detail::backend_of("scale", {&a});
  Tensor out = be.scale(a.detach().contiguous(), s);
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
  Backend& be = detail::backend_of("sum", {&a});
  dim = wrap_dim(dim, a.dim());
  Tensor out = be.sum_dim(a.detach().contiguous(), dim);
  if (!keepdim) {
    Shape s = out.shape();
    s.erase(s.begin() + dim);
    out = out.reshape(s);
  }
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
