// concat, and row gather/scatter (merging image rows into the token sequence).
#include "autograd/node.h"
#include "cuda/ops.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace minivlm::ops {

using detail::check_cpu;

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
  MV_CHECK(idx.dim() == 1 && (idx.dtype() == DType::i32 || idx.dtype() == DType::i64), op,
           ": indices must be a 1-D integer tensor, got ", idx.desc());
  std::vector<int64_t> rows = idx.to_int_vector();
  for (int64_t r : rows) MV_CHECK(r >= 0 && r < n, op, ": row index ", r, " outside [0, ", n, ")");
  return rows;
}

// out[i] = x[rows[i]] for 2-D contiguous tensors.
Tensor copy_rows(const Tensor& x, const std::vector<int64_t>& rows) {
  const Tensor xc = x.contiguous();
  const int64_t H = x.size(1);
  const size_t esz = dtype_size(x.dtype());
  Tensor out = Tensor::empty({static_cast<int64_t>(rows.size()), H}, x.dtype());
  const char* src = static_cast<const char*>(xc.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (size_t i = 0; i < rows.size(); ++i)
    std::copy_n(src + rows[i] * H * esz, H * esz, dst + i * H * esz);
  return out;
}

}  // namespace

Tensor gather_rows(const Tensor& x, const Tensor& idx) {
  MV_CHECK(x.defined() && x.dim() == 2, "gather_rows: x must be [N, H], got ", x.desc());
  const std::vector<int64_t> rows = checked_rows("gather_rows", idx, x.size(0));
  if (x.device().is_cuda_backend()) return cuda::gather_rows(x, idx, rows);
  check_cpu("gather_rows", x);
  Tensor out = copy_rows(x, rows);
  const Shape in_shape = x.shape();
  const DType dt = x.dtype();
  return record(out, "gather_rows", {x, idx}, [=](const Tensor& g) {
    Tensor dx = Tensor::zeros(in_shape, dt);
    const Tensor gc = g.contiguous();
    for (size_t i = 0; i < rows.size(); ++i) {
      Tensor dst = dx.select(0, rows[i]);
      dst.copy_(add(dst, gc.select(0, static_cast<int64_t>(i))));
    }
    return std::vector<Tensor>{dx, Tensor()};
  });
}

Tensor scatter_rows(const Tensor& base, const Tensor& idx, const Tensor& src) {
  MV_CHECK(base.defined() && src.defined(), "scatter_rows: undefined input tensor");
  MV_CHECK(base.device() == src.device(), "scatter_rows: base ", base.desc(), " and src ",
           src.desc(), " are on different devices");
  if (!base.device().is_cuda_backend()) {
    check_cpu("scatter_rows", base);
    check_cpu("scatter_rows", src);
  }
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
  if (base.device().is_cuda_backend()) return cuda::scatter_rows(base, idx, src, rows);
  Tensor out = base.detach().clone();
  const Tensor sc = src.contiguous();
  for (size_t i = 0; i < rows.size(); ++i)
    out.select(0, rows[i]).copy_(sc.detach().select(0, static_cast<int64_t>(i)));
  return record(out, "scatter_rows", {base, idx, src}, [rows](const Tensor& g) {
    Tensor dbase = g.clone();
    for (int64_t r : rows) dbase.select(0, r).zero_();
    return std::vector<Tensor>{dbase, Tensor(), copy_rows(g, rows)};
  });
}

}  // namespace minivlm::ops
