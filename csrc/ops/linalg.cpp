// matmul and linear on CBLAS GEMM. Operands whose last two dimensions are row-major or transposed
// views go to GEMM as they are (with a transpose flag), so x·Wᵀ and the backward's Aᵀ·G copy
// nothing.
#include "autograd/node.h"
#include "cuda/ops.h"
#include "cpu/gemm.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace minivlm::ops {

using detail::check_cpu;
using detail::dispatch_float;

namespace {

// How a [.., R, C] operand's matrix can be handed to GEMM without a copy.
struct MatrixLayout {
  Tensor t;    // the tensor to read (possibly a contiguous copy)
  bool trans;  // stored as the transpose
  int64_t ld;  // leading dimension
};

MatrixLayout matrix_layout(const Tensor& x) {
  const int64_t r = x.size(-2), c = x.size(-1);
  const int64_t sr = x.stride(-2), sc = x.stride(-1);
  if ((sc == 1 || c == 1) && sr >= std::max<int64_t>(c, 1))
    return {x, false, std::max<int64_t>(sr, 1)};
  if ((sr == 1 || r == 1) && sc >= std::max<int64_t>(r, 1))
    return {x, true, std::max<int64_t>(sc, 1)};
  Tensor cc = x.detach().contiguous();
  return {cc, false, std::max<int64_t>(c, 1)};
}

// The offset (in elements) of batch index `bi` of a tensor whose batch dims broadcast to `batch`.
int64_t batch_offset(const Tensor& t, const Shape& batch, int64_t bi) {
  const int64_t nb = static_cast<int64_t>(batch.size());
  const int64_t tb = t.dim() - 2;
  int64_t off = t.offset();
  for (int64_t d = nb - 1; d >= 0; --d) {
    const int64_t idx = bi % batch[d];
    bi /= batch[d];
    const int64_t td = d - (nb - tb);
    if (td >= 0 && t.shape()[td] != 1) off += idx * t.strides()[td];
  }
  return off;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (a.device().is_cuda_backend()) return cuda::matmul(a, b);
  check_cpu("matmul", a);
  check_cpu("matmul", b);
  detail::check_same_dtype("matmul", a, b);
  MV_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: needs matrices, got ", a.desc(), " and ",
           b.desc());
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  MV_CHECK(b.size(-2) == k, "matmul: inner dimensions differ: ", shape_str(a.shape()), " @ ",
           shape_str(b.shape()));
  // Broadcast batch dimensions.
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
  Tensor out = Tensor::empty(out_shape, a.dtype());
  const MatrixLayout la = matrix_layout(a), lb = matrix_layout(b);
  const int64_t nbatch = shape_numel(batch);
  dispatch_float("matmul", a, [&](auto zero) {
    using T = decltype(zero);
    const T* pa = static_cast<const T*>(la.t.storage()->data);
    const T* pb = static_cast<const T*>(lb.t.storage()->data);
    T* po = out.data<T>();
    for (int64_t i = 0; i < nbatch; ++i) {
      cpu::gemm<T>(la.trans, lb.trans, m, n, k, T(1), pa + batch_offset(la.t, batch, i), la.ld,
                   pb + batch_offset(lb.t, batch, i), lb.ld, T(0), po + i * m * n, n);
    }
  });
  const Tensor ad = a.detach(), bd = b.detach();
  const Shape sa = a.shape(), sb = b.shape();
  return record(out, "matmul", {a, b}, [=](const Tensor& g) {
    return std::vector<Tensor>{reduce_to_shape(matmul(g, bd.transpose(-1, -2)), sa),
                               reduce_to_shape(matmul(ad.transpose(-1, -2), g), sb)};
  });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  MV_CHECK(weight.dim() == 2, "linear: weight must be [out, in], got ", weight.desc());
  MV_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input ", shape_str(x.shape()),
           " does not match weight ", shape_str(weight.shape()), " (in features ", weight.size(1),
           ")");
  Shape out_shape = x.shape();
  out_shape.back() = weight.size(0);
  Tensor y = matmul(x.reshape({-1, weight.size(1)}), weight.transpose(0, 1));
  if (bias.defined()) {
    detail::check_shape("linear", "bias", bias, {weight.size(0)});
    y = add(y, bias);
  }
  return y.reshape(out_shape);
}

}  // namespace minivlm::ops
