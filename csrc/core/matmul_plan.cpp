#include "core/matmul_plan.h"

namespace minivlm {

namespace {

GemmOperand gemm_operand(const Tensor& x) {
  const int64_t r = x.size(-2), c = x.size(-1);
  const int64_t sr = x.stride(-2), sc = x.stride(-1);
  if ((sc == 1 || c == 1) && sr >= std::max<int64_t>(c, 1))
    return {x.detach(), false, std::max<int64_t>(sr, 1)};
  if ((sr == 1 || r == 1) && sc >= std::max<int64_t>(r, 1))
    return {x.detach(), true, std::max<int64_t>(sc, 1)};
  return {x.detach().contiguous(), false, std::max<int64_t>(c, 1)};
}

// The offset (in elements) of batch index `bi` of a tensor whose batch dims broadcast to `batch`.
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

int64_t MatmulPlan::a_offset(int64_t i) const { return batch_offset(a.t, batch, i); }
int64_t MatmulPlan::b_offset(int64_t i) const { return batch_offset(b.t, batch, i); }

MatmulPlan plan_matmul(const Tensor& a, const Tensor& b) {
  MV_CHECK(a.dtype() == b.dtype(), "matmul: dtype mismatch between ", a.desc(), " and ", b.desc());
  MV_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: needs matrices, got ", a.desc(), " and ",
           b.desc());
  MatmulPlan p;
  p.m = a.size(-2);
  p.k = a.size(-1);
  p.n = b.size(-1);
  MV_CHECK(b.size(-2) == p.k, "matmul: inner dimensions differ: ", shape_str(a.shape()), " @ ",
           shape_str(b.shape()));
  p.batch =
      broadcast_shapes("matmul (batch dimensions)", Shape(a.shape().begin(), a.shape().end() - 2),
                       Shape(b.shape().begin(), b.shape().end() - 2));
  p.out_shape = p.batch;
  p.out_shape.push_back(p.m);
  p.out_shape.push_back(p.n);
  p.a = gemm_operand(a);
  p.b = gemm_operand(b);
  return p;
}

}  // namespace minivlm
