// The CPU back-end as registered for the cpu device: CpuBackend's f32/f64 primitives, and bf16
// tensors computed with the CUDA back-end's semantics: bf16 storage, fp32 arithmetic inside
// (norm statistics, softmax, loss, attention's log-sum-exp, every reduction), each bf16 output
// rounded once to nearest even.
//
// How: element-wise primitives (binary, scale, the activations, SwiGLU, the bias add) convert on
// the fly, a few hundred values at a time, around the fp32 math of the f32 loops; matmul is the
// bf16 GEMM (cpu/bf16_gemm.h); every other primitive widens its bf16 inputs to fp32 tensors
// (cpu/bf16.h), runs CpuBackend's f32 primitive and rounds its outputs. What a forward saves for
// its backward stays fp32 (rstd, mean, log-sum-exp) except the attention output, which the
// backward reads as stored, as on CUDA. The cross-entropy loss is an f32 scalar. AdamW updates
// the fp32 master weights with the f32 update and rounds them into the bf16 parameters.
// Primitives whose arguments are not bf16 are CpuBackend's, so f32 and f64 results are the same
// bits as without this layer.
#pragma once
#include "cpu/backend.h"

namespace minivlm::cpu {

class CpuBf16Backend final : public CpuBackend {
 public:
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

  Tensor embedding_forward(const Tensor& weight, const Tensor& ids) override;
  Tensor embedding_backward(const Tensor& dout, const Tensor& ids, int64_t vocab) override;
  CrossEntropy cross_entropy_forward(const Tensor& logits, const Tensor& targets,
                                     double denominator) override;
  Tensor cross_entropy_backward(const Tensor& dloss, const Tensor& logits, const Tensor& targets,
                                const CrossEntropy& saved, double denominator) override;

  Tensor index_add_rows(int64_t rows, const Tensor& idx, const Tensor& src) override;

  double grad_norm(const std::vector<Tensor>& grads) override;
  void adamw_update(std::span<const AdamWSlot> slots, const AdamWHyper& h) override;
  // gather_rows, scatter_rows, pixel_shuffle and indices move bytes: CpuBackend's serve bf16.
};

}  // namespace minivlm::cpu
