// matmul on the runtime's GEMM (cuBLAS on `cuda`, the CPU GEMM on `cuda-emu`). As on the CPU,
// operands whose last two dimensions are row-major or transposed views go to GEMM as they are.
#include "autograd/node.h"
#include "cuda/backend.h"
#include "cuda/ops.h"
#include "ops/ops.h"

namespace minivlm::cuda {

namespace {

struct MatrixLayout {
  Tensor t;
  bool trans;
  int64_t ld;
};

MatrixLayout matrix_layout(const Tensor& x) {
  const int64_t r = x.size(-2), c = x.size(-1);
  const int64_t sr = x.stride(-2), sc = x.stride(-1);
  if ((sc == 1 || c == 1) && sr >= std::max<int64_t>(c, 1))
    return {x.detach(), false, std::max<int64_t>(sr, 1)};
  if ((sr == 1 || r == 1) && sc >= std::max<int64_t>(r, 1))
    return {x.detach(), true, std::max<int64_t>(sc, 1)};
  return {strided_copy(x), false, std::max<int64_t>(c, 1)};
}

// Element offset of batch index bi of a tensor whose batch dims broadcast to `batch`.
int64_t batch_offset(const Tensor& t, const Shape& batch, int64_t bi) {
  const int64_t nb = static_cast<int64_t>(batch.size());
  const int64_t tb = t.dim() - 2;
  int64_t off = t.offset();
  for (int64_t d = nb - 1; d >= 0; --d) {
    const int64_t idx = bi % batch[static_cast<size_t>(d)];
    bi /= batch[static_cast<size_t>(d)];
    const int64_t td = d - (nb - tb);
    if (td >= 0 && t.shape()[static_cast<size_t>(td)] != 1)
      off += idx * t.strides()[static_cast<size_t>(td)];
  }
  return off;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  const Device dev = a.device();
  check_device("matmul", b, dev);
  MV_CHECK(a.dtype() == b.dtype(), "matmul: dtype mismatch between ", a.desc(), " and ", b.desc());
  MV_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: needs matrices, got ", a.desc(), " and ",
           b.desc());
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  MV_CHECK(b.size(-2) == k, "matmul: inner dimensions differ: ", shape_str(a.shape()), " @ ",
           shape_str(b.shape()));
  const Shape ba(a.shape().begin(), a.shape().end() - 2),
      bb(b.shape().begin(), b.shape().end() - 2);
  const size_t nb = std::max(ba.size(), bb.size());
  Shape batch(nb);
  for (size_t i = 0; i < nb; ++i) {
    const int64_t da = i < nb - ba.size() ? 1 : ba[i - (nb - ba.size())];
    const int64_t db = i < nb - bb.size() ? 1 : bb[i - (nb - bb.size())];
    MV_CHECK(da == db || da == 1 || db == 1, "matmul: batch dimensions of ", shape_str(a.shape()),
             " and ", shape_str(b.shape()), " do not broadcast");
    batch[i] = std::max(da, db);
  }
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor out = device_empty(out_shape, a.dtype(), dev);
  dispatch_storage("matmul", a, [](auto) {});  // f32 or bf16 only
  const MatrixLayout la = matrix_layout(a), lb = matrix_layout(b);
  const size_t esize = dtype_size(a.dtype());
  Runtime& rt = runtime_for(dev);
  const int64_t nbatch = shape_numel(batch);
  for (int64_t i = 0; i < nbatch; ++i) {
    Runtime::Gemm g;
    g.dtype = a.dtype();
    g.trans_a = la.trans;
    g.trans_b = lb.trans;
    g.m = m;
    g.n = n;
    g.k = k;
    g.a = static_cast<const char*>(la.t.storage()->data) + batch_offset(la.t, batch, i) * esize;
    g.lda = la.ld;
    g.b = static_cast<const char*>(lb.t.storage()->data) + batch_offset(lb.t, batch, i) * esize;
    g.ldb = lb.ld;
    g.c = static_cast<char*>(out.raw_data()) + i * m * n * static_cast<int64_t>(esize);
    g.ldc = n;
    rt.gemm(g, stream_for(dev));
  }
  const Tensor ad = a.detach(), bd = b.detach();
  const Shape sa = a.shape(), sb = b.shape();
  return record(out, "matmul", {a, b}, [=](const Tensor& g) {
    return std::vector<Tensor>{ops::reduce_to_shape(ops::matmul(g, bd.transpose(-1, -2)), sa),
                               ops::reduce_to_shape(ops::matmul(ad.transpose(-1, -2), g), sb)};
  });
}

}  // namespace minivlm::cuda
