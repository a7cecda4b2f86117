// The CPU back-end: every primitive of core/backend.h as OpenMP loops over host memory, in f32 (and
// f64, the gradient-check path); GEMM through cpu/gemm.h. bf16 tensors are the business of the
// subclass registered for the cpu device (cpu/bf16_backend.h), which computes them in fp32 here.
// One file per op family, named as its front-end in ops/ (cpu/norm.cpp ↔ ops/norm.cpp). Reductions
// that feed the weights add in an order that does not depend on the thread count, so results are
// the same bits for every run.
#pragma once
#include "core/backend.h"

namespace minivlm::cpu {

class CpuBackend : public Backend {
 public:
  const char* name() const override { return "cpu"; }
  bool computes(DType dtype) const override;

  Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& shape) override;
  Tensor scale(const Tensor& a, double s) override;
  Tensor sum_dim(const Tensor& a, int64_t dim) override;
  void add_bias_(const Tensor& y, const Tensor& bias) override;

  Tensor matmul(const MatmulPlan& p) override;

  Tensor activation_forward(Activation a, const Tensor& x) override;
  Tensor activation_backward(Activation a, const Tensor& dout, const Tensor& x) override;
  Tensor swiglu_forward(const Tensor& gate, const Tensor& up) override;
  std::array<Tensor, 2> swiglu_backward(const Tensor& dout, const Tensor& gate,
                                        const Tensor& up) override;
  Tensor softmax_forward(const Tensor& x) override;
  Tensor softmax_backward(const Tensor& dout, const Tensor& y) override;

  Norm rmsnorm_forward(const Tensor& x, const Tensor& weight, double eps) override;
  std::array<Tensor, 2> rmsnorm_backward(const Tensor& dout, const Tensor& x, const Tensor& weight,
                                         const Norm& saved) override;
  Norm layernorm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                         double eps) override;
  std::array<Tensor, 3> layernorm_backward(const Tensor& dout, const Tensor& x,
                                           const Tensor& weight, const Norm& saved) override;

  Tensor rope(const Tensor& x, double theta, int64_t start_pos, const Tensor& positions,
              bool inverse) override;
  Attention attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                              const Tensor& seq_start) override;
  std::array<Tensor, 3> attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                           const Tensor& v, const Attention& saved, bool causal,
                                           const Tensor& seq_start) override;

  Tensor indices(const std::vector<int64_t>& values, Device device) override;
  Tensor embedding_forward(const Tensor& weight, const Tensor& ids) override;
  Tensor embedding_backward(const Tensor& dout, const Tensor& ids, int64_t vocab) override;
  CrossEntropy cross_entropy_forward(const Tensor& logits, const Tensor& targets,
                                     double denominator) override;
  Tensor cross_entropy_backward(const Tensor& dloss, const Tensor& logits, const Tensor& targets,
                                const CrossEntropy& saved, double denominator) override;

  Tensor gather_rows(const Tensor& x, const Tensor& idx) override;
  Tensor index_add_rows(int64_t rows, const Tensor& idx, const Tensor& src) override;
  Tensor scatter_rows(const Tensor& base, const Tensor& idx, const Tensor& src) override;

  Tensor pixel_shuffle_forward(const Tensor& x, int64_t G, int64_t r) override;
  Tensor pixel_shuffle_backward(const Tensor& dout, const Shape& x_shape, int64_t G,
                                int64_t r) override;

  double grad_norm(const std::vector<Tensor>& grads) override;
  void adamw_update(std::span<const AdamWSlot> slots, const AdamWHyper& h) override;
};

// Calls f(T{}) with T = float or double for the tensor's dtype; other dtypes are an error naming
// op.
template <typename F>
decltype(auto) dispatch_float(const char* op, const Tensor& t, F&& f) {
  switch (t.dtype()) {
    case DType::f32:
      return f(float{});
    case DType::f64:
      return f(double{});
    default:
      MV_FAIL(op, ": unsupported dtype ", dtype_name(t.dtype()),
              " (the CPU back-end computes in f32 or f64; convert with to())");
  }
}

}  // namespace minivlm::cpu
