// How a batched product a [..., M, K] @ b [..., K, N] maps onto GEMM calls, shared by the CPU and
// CUDA back-ends: shape checks, broadcast batch dimensions, and operands whose last two dimensions
// are row-major or transposed views handed over as they are (with a transpose flag), so x·Wᵀ and
// the backward's Aᵀ·G copy nothing.
#pragma once
#include "core/tensor.h"

namespace minivlm {

struct GemmOperand {
  Tensor t;    // the tensor to read (a contiguous copy when its layout fits neither form)
  bool trans;  // stored as the transpose
  int64_t ld;  // leading dimension
};

struct MatmulPlan {
  int64_t m = 0, n = 0, k = 0;
  Shape batch;      // broadcast batch dimensions
  Shape out_shape;  // batch + [m, n]
  GemmOperand a, b;
  int64_t batches() const { return shape_numel(batch); }
  // Element offsets, from each operand's storage base, of batch index i.
  int64_t a_offset(int64_t i) const;
  int64_t b_offset(int64_t i) const;
};

MatmulPlan plan_matmul(const Tensor& a, const Tensor& b);

}  // namespace minivlm
