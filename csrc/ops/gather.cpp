// concat, and row gather/scatter/index-add (merging image rows into the token sequence).
#include "autograd/node.h"
#include "ops/checks.h"
#include "ops/ops.h"

namespace minivlm::ops {

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  MV_CHECK(!xs.empty(), "concat: no tensors");
  const Tensor& first = xs[0];
  dim = wrap_dim(dim, first.dim());
  Shape out_shape = first.shape();
  out_shape[dim] = 0;
  for (const Tensor& t : xs) {
    MV_CHECK(t.dim() == first.dim(), "concat: ", t.desc(), " and ", first.desc(),
             " differ in rank");
    detail::check_same_dtype("concat", first, t);
    for (int64_t d = 0; d < t.dim(); ++d)
      MV_CHECK(d == dim || t.shape()[d] == first.shape()[d], "concat along ", dim, ": ",
               shape_str(t.shape()), " does not match ", shape_str(first.shape()));
    out_shape[dim] += t.shape()[dim];
  }
  Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
  std::vector<int64_t> sizes;
  int64_t at = 0;
  for (const Tensor& t : xs) {
    out.detach().narrow(dim, at, t.shape()[dim]).copy_(t);
    sizes.push_back(t.shape()[dim]);
    at += t.shape()[dim];
  }
  return record(out, "concat", xs, [sizes, dim](const Tensor& g) {
    std::vector<Tensor> grads;
    int64_t pos = 0;
    for (int64_t s : sizes) {
      grads.push_back(g.narrow(dim, pos, s).contiguous());
      pos += s;
    }
    return grads;
  });
}

namespace {

std::vector<int64_t> checked_rows(const char* op, const Tensor& idx, int64_t n) {
  MV_CHECK(idx.defined() && idx.dim() == 1, op, ": indices must be a 1-D integer tensor, got ",
           idx.defined() ? idx.desc() : "undefined");
  std::vector<int64_t> rows = detail::index_values(op, "indices", idx);
  for (int64_t r : rows) MV_CHECK(r >= 0 && r < n, op, ": row index ", r, " outside [0, ", n, ")");
  return rows;
}

}  // namespace

Tensor gather_rows(const Tensor& x, const Tensor& idx) {
  MV_CHECK(x.defined() && x.dim() == 2, "gather_rows: x must be [N, H], got ",
           x.defined() ? x.desc() : "undefined");
  Backend& be = detail::backend_of("gather_rows", {&x});
  const Tensor rows = be.indices(checked_rows("gather_rows", idx, x.size(0)), x.device());
  Tensor out = be.gather_rows(x.detach().contiguous(), rows);
  const int64_t n = x.size(0);
  return record(out, "gather_rows", {x, idx}, [rows, n, &be](const Tensor& g) {
    return std::vector<Tensor>{be.index_add_rows(n, rows, g.contiguous()), Tensor()};
  });
}

Tensor scatter_rows(const Tensor& base, const Tensor& idx, const Tensor& src) {
  Backend& be = detail::backend_of("scatter_rows", {&base, &src});
  detail::check_same_dtype("scatter_rows", base, src);
  MV_CHECK(base.dim() == 2 && src.dim() == 2 && src.size(1) == base.size(1), "scatter_rows: base ",
           base.desc(), " and src ", src.desc(), " must be [N, H] and [M, H]");
  const std::vector<int64_t> rows = checked_rows("scatter_rows", idx, base.size(0));
  MV_CHECK(static_cast<int64_t>(rows.size()) == src.size(0), "scatter_rows: ", rows.size(),
           " indices for ", src.size(0), " source rows");
  std::vector<char> seen(static_cast<size_t>(base.size(0)), 0);
  for (int64_t r : rows) {
    MV_CHECK(!seen[r], "scatter_rows: row ", r, " given twice");
    seen[r] = 1;
  }
  const Tensor r = be.indices(rows, base.device());
  Tensor out = be.scatter_rows(base.detach().contiguous(), r, src.detach().contiguous());
  return record(out, "scatter_rows", {base, idx, src}, [r, &be](const Tensor& g) {
    const Tensor gc = g.contiguous();
    return std::vector<Tensor>{be.scatter_rows(gc, r, Tensor()), Tensor(), be.gather_rows(gc, r)};
  });
}

Tensor index_add_rows(const Tensor& base, const Tensor& idx, const Tensor& src) {
  Backend& be = detail::backend_of("index_add_rows", {&base, &src});
  detail::check_same_dtype("index_add_rows", base, src);
  MV_CHECK(base.dim() == 2 && src.dim() == 2 && src.size(1) == base.size(1),
           "index_add_rows: base ", base.desc(), " and src ", src.desc(),
           " must be [N, H] and [M, H]");
  const std::vector<int64_t> rows = checked_rows("index_add_rows", idx, base.size(0));
  MV_CHECK(static_cast<int64_t>(rows.size()) == src.size(0), "index_add_rows: ", rows.size(),
           " indices for ", src.size(0), " source rows");
  const Tensor r = be.indices(rows, base.device());
  // The src rows summed into a zero [N, H] in order of idx, then added to base.
  const Tensor added = be.index_add_rows(base.size(0), r, src.detach().contiguous());
  Tensor out = be.binary(BinaryOp::add, base.detach().contiguous(), added, base.shape());
  return record(out, "index_add_rows", {base, idx, src}, [r, &be](const Tensor& g) {
    return std::vector<Tensor>{g, Tensor(), be.gather_rows(g.contiguous(), r)};
  });
}

}  // namespace minivlm::ops
