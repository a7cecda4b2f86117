// What a compute back-end implements: the forward and backward primitives of every op, in the shape
// of llm.c's launcher pairs (rmsnorm_forward(x, w, eps) → {y, rstd}, rmsnorm_backward(dy, x, w,
// rstd) → {dx, dw}), over tensors of its own device.
//
// The op front-ends (ops/) own everything else, once for all devices: argument checks, the choice
// of the back-end of their inputs' device (backend_for), and the autograd node whose backward calls
// the back-end's backward primitive. So a primitive receives checked arguments — shapes agree,
// dtypes match, every tensor on this back-end's device, index lists in range — and returns new
// tensors on that device; it never records autograd nodes. What a primitive saves for its backward
// (rstd, log-sum-exp, ...) is the back-end's business: the front-end only hands it back.
//
// A back-end is one folder (cpu/, cuda/) that registers itself for its device types at static
// initialisation; the library is linked whole into every program, so registration needs no
// reference from elsewhere.
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "core/matmul_plan.h"
#include "core/tensor.h"

namespace minivlm {

enum class BinaryOp : uint8_t { add, sub, mul };
// gelu: the erf form; gelu_tanh: its tanh approximation (PyTorch approximate='tanh').
enum class Activation : uint8_t { silu, gelu, quick_gelu, gelu_tanh };

// A target row of the cross-entropy that carries no loss.
inline constexpr int64_t kIgnoredRow = -100;

// One parameter's update: param (and its fp32 master weights, or undefined when the parameter is
// its own master), its gradient, and the fp32 moments, all contiguous on one device.
struct AdamWSlot {
  Tensor param, master, grad, m, v;
};
struct AdamWHyper {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  int64_t step = 1;         // t ≥ 1, for the bias corrections
  double grad_scale = 1.0;  // every gradient is multiplied by it first (the clipping factor)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  // Whether ops compute on tensors of `dtype` here.
  virtual bool computes(DType dtype) const = 0;

  // ---- element-wise and reductions ----
  // a op b with a and b broadcast to `shape` (numpy rules, already checked).
  virtual Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& shape) = 0;
  virtual Tensor scale(const Tensor& a, double s) = 0;
  // Σ over dimension `dim`, which is kept with size 1.
  virtual Tensor sum_dim(const Tensor& a, int64_t dim) = 0;
  // y[r, :] += bias for every row of y [N, C] (contiguous; written in place).
  virtual void add_bias_(const Tensor& y, const Tensor& bias) = 0;

  // ---- linear algebra ----
  // The product p describes (core/matmul_plan.h): out [p.out_shape].
  virtual Tensor matmul(const MatmulPlan& p) = 0;

  // ---- activations ----
  virtual Tensor activation_forward(Activation a, const Tensor& x) = 0;
  virtual Tensor activation_backward(Activation a, const Tensor& dout, const Tensor& x) = 0;
  // silu(gate) · up; backward → {dgate, dup}.
  virtual Tensor swiglu_forward(const Tensor& gate, const Tensor& up) = 0;
  virtual std::array<Tensor, 2> swiglu_backward(const Tensor& dout, const Tensor& gate,
                                                const Tensor& up) = 0;
  // Softmax over the last dimension; the backward reads the forward's output y.
  virtual Tensor softmax_forward(const Tensor& x) = 0;
  virtual Tensor softmax_backward(const Tensor& dout, const Tensor& y) = 0;

  // ---- normalization over the last dimension of x [..., C] ----
  struct Norm {
    Tensor out;   // like x
    Tensor mean;  // per row (LayerNorm; for RMSNorm as the back-end likes)
    Tensor rstd;  // per row
  };
  virtual Norm rmsnorm_forward(const Tensor& x, const Tensor& weight, double eps) = 0;
  // → {dx, dweight}
  virtual std::array<Tensor, 2> rmsnorm_backward(const Tensor& dout, const Tensor& x,
                                                 const Tensor& weight, const Norm& saved) = 0;
  virtual Norm layernorm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                 double eps) = 0;
  // → {dx, dweight, dbias}
  virtual std::array<Tensor, 3> layernorm_backward(const Tensor& dout, const Tensor& x,
                                                   const Tensor& weight, const Norm& saved) = 0;

  // ---- transformer pieces ----
  // Half-split rotary embedding of x [B, T, nh, hd]; inverse rotates by the opposite angle (the
  // backward). Token t of row b is at position start_pos + t, or, when `positions` is defined (an
  // index list from indices(): B·T values ≥ 0, row-major), at positions[b·T + t].
  virtual Tensor rope(const Tensor& x, double theta, int64_t start_pos, const Tensor& positions,
                      bool inverse) = 0;
  struct Attention {
    Tensor out;  // [B, Tq, nq, hd]
    Tensor lse;  // [B, nq, Tq] log-sum-exp of the scaled scores
  };
  // q [B, Tq, nq, hd], k and v [B, Tk, nkv, hd]; causal: query i sees keys j ≤ i + Tk − Tq.
  // seq_start: undefined, or (packed rows: causal, Tq = Tk) an index list from indices() of B·Tq
  // values, row-major, non-decreasing along each row with seq_start[b·Tq + i] ≤ i: query i of row b
  // then sees only the keys seq_start[b·Tq + i] ≤ j ≤ i (the first token of its sample up to
  // itself). Key blocks outside that range are skipped, and no [Tq, Tk] mask exists.
  virtual Attention attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                      bool causal, const Tensor& seq_start) = 0;
  // → {dq, dk, dv}
  virtual std::array<Tensor, 3> attention_backward(const Tensor& dout, const Tensor& q,
                                                   const Tensor& k, const Tensor& v,
                                                   const Attention& saved, bool causal,
                                                   const Tensor& seq_start) = 0;

  // An index list (token ids, target rows, row numbers) on `device` as this back-end reads it; the
  // values are checked by the caller.
  virtual Tensor indices(const std::vector<int64_t>& values, Device device) = 0;
  // weight [V, H] rows at ids → [n, H]; backward: dweight [V, H], each row the sum of its ids'
  // gradient rows in order.
  virtual Tensor embedding_forward(const Tensor& weight, const Tensor& ids) = 0;
  virtual Tensor embedding_backward(const Tensor& dout, const Tensor& ids, int64_t vocab) = 0;
  // Softmax cross-entropy of logits [N, V] at targets (kIgnoredRow: no loss), summed and divided
  // by denominator (> 0; otherwise the loss is 0). `saved` is what the backward needs.
  struct CrossEntropy {
    Tensor loss;  // scalar
    Tensor saved;
  };
  virtual CrossEntropy cross_entropy_forward(const Tensor& logits, const Tensor& targets,
                                             double denominator) = 0;
  // dlogits for the incoming scalar gradient dloss (a tensor on this device).
  virtual Tensor cross_entropy_backward(const Tensor& dloss, const Tensor& logits,
                                        const Tensor& targets, const CrossEntropy& saved,
                                        double denominator) = 0;

  // ---- rows of 2-D tensors ----
  // x [N, H] rows at idx [M] → [M, H].
  virtual Tensor gather_rows(const Tensor& x, const Tensor& idx) = 0;
  // A zero [rows, H] tensor with src [M, H] added to rows idx in order (rows may repeat).
  virtual Tensor index_add_rows(int64_t rows, const Tensor& idx, const Tensor& src) = 0;
  // A copy of base [N, H] whose rows idx (distinct) are src [M, H], or zero when src is undefined.
  virtual Tensor scatter_rows(const Tensor& base, const Tensor& idx, const Tensor& src) = 0;

  // ---- vision ----
  // SmolVLM pixel shuffle (SPEC §1.4) of x [..., G², D] by r → [..., (G/r)², D·r²]; backward: the
  // inverse permutation of dout back to x's shape.
  virtual Tensor pixel_shuffle_forward(const Tensor& x, int64_t G, int64_t r) = 0;
  virtual Tensor pixel_shuffle_backward(const Tensor& dout, const Shape& x_shape, int64_t G,
                                        int64_t r) = 0;

  // ---- optimizer ----
  // The L2 norm of all gradients together, summed in an order that does not depend on the thread
  // count (resume is bit-exact through it).
  virtual double grad_norm(const std::vector<Tensor>& grads) = 0;
  // One AdamW step (PyTorch semantics, decoupled weight decay) of every slot.
  virtual void adamw_update(std::span<const AdamWSlot> slots, const AdamWHyper& h) = 0;
};

// Registered by each back-end at static initialisation.
void register_backend(DeviceType type, Backend* backend);
// The back-end computing on `device`; an error names a device without one.
Backend& backend_for(Device device);
// Every device type with a back-end, in enum order (cpu first).
std::vector<DeviceType> registered_backends();

}  // namespace minivlm
