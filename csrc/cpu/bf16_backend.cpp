// The bf16 primitives of the CPU back-end (cpu/bf16_backend.h) and its registration.
#include "cpu/bf16_backend.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

#include "cpu/activation_math.h"
#include "cpu/bf16.h"
#include "cpu/bf16_gemm.h"
#include "cpu/parallel_ranges.h"

namespace minivlm::cpu {

namespace {

bool is_bf16(const Tensor& t) { return t.defined() && t.dtype() == DType::bf16; }

const uint16_t* bits(const Tensor& t) { return static_cast<const uint16_t*>(t.raw_data()); }
uint16_t* bits_mut(const Tensor& t) { return static_cast<uint16_t*>(t.raw_data()); }

// bf16 → f32 (other dtypes pass), f32 → bf16.
Tensor widen(const Tensor& t) { return widen_bf16(t); }
Tensor narrow(const Tensor& t) { return round_to_bf16(t); }

// Values converted per step of an element-wise loop: a few KB of fp32 per operand, in L1.
constexpr int64_t kChunk = 512;

// For i < n: the outputs' values at i from the inputs' at i, f computing in fp32 on chunks:
// f(x, y, len) reads x[j][0..len) and writes y[j][0..len). Contiguous bf16 operands.
template <size_t NI, size_t NO, typename F>
void map_bf16(int64_t n, std::array<const uint16_t*, NI> in, std::array<uint16_t*, NO> out, F&& f) {
  parallel_ranges(n, 16384, [&](int64_t i0, int64_t i1) {
    alignas(64) float xs[NI][kChunk];
    alignas(64) float ys[NO][kChunk];
    std::array<const float*, NI> x;
    std::array<float*, NO> y;
    for (size_t j = 0; j < NI; ++j) x[j] = xs[j];
    for (size_t j = 0; j < NO; ++j) y[j] = ys[j];
    for (int64_t c0 = i0; c0 < i1; c0 += kChunk) {
      const int64_t len = std::min(kChunk, i1 - c0);
      for (size_t j = 0; j < NI; ++j) bf16_to_f32(in[j] + c0, xs[j], len);
      f(x, y, len);
      for (size_t j = 0; j < NO; ++j) f32_to_bf16(ys[j], out[j] + c0, len);
    }
  });
}

}  // namespace

bool CpuBf16Backend::computes(DType dtype) const {
  return dtype == DType::bf16 || CpuBackend::computes(dtype);
}

// ---- element-wise: converted on the fly ----

Tensor CpuBf16Backend::binary(BinaryOp kind, const Tensor& a, const Tensor& b, const Shape& shape) {
  if (!is_bf16(a)) return CpuBackend::binary(kind, a, b, shape);
  const Tensor ac = (a.shape() == shape ? a : broadcast_view(a, shape)).contiguous();
  const Tensor bc = (b.shape() == shape ? b : broadcast_view(b, shape)).contiguous();
  Tensor out = Tensor::empty(shape, DType::bf16);
  with_binary(kind, [&](auto op) {
    map_bf16<2, 1>(out.numel(), {bits(ac), bits(bc)}, {bits_mut(out)},
                   [&](const auto& x, const auto& y, int64_t len) {
                     const float* __restrict xa = x[0];
                     const float* __restrict xb = x[1];
                     float* __restrict o = y[0];
                     for (int64_t i = 0; i < len; ++i) o[i] = op(xa[i], xb[i]);
                   });
  });
  return out;
}

Tensor CpuBf16Backend::scale(const Tensor& a, double s) {
  if (!is_bf16(a)) return CpuBackend::scale(a, s);
  const Tensor ac = a.contiguous();
  Tensor out = Tensor::empty(a.shape(), DType::bf16);
  const float f = static_cast<float>(s);
  map_bf16<1, 1>(out.numel(), {bits(ac)}, {bits_mut(out)},
                 [f](const auto& x, const auto& y, int64_t len) {
                   const float* __restrict xa = x[0];
                   float* __restrict o = y[0];
                   for (int64_t i = 0; i < len; ++i) o[i] = xa[i] * f;
                 });
  return out;
}

void CpuBf16Backend::add_bias_(const Tensor& y, const Tensor& bias) {
  if (!is_bf16(y)) return CpuBackend::add_bias_(y, bias);
  const int64_t n = y.size(-1), rows = n == 0 ? 0 : y.numel() / n;
  const Tensor b = widen(bias);
  const float* pb = b.data<float>();
  uint16_t* py = bits_mut(y);
#pragma omp parallel for if (rows * n > 32768) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    alignas(64) float row[kChunk];
    for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
      const int64_t len = std::min(kChunk, n - c0);
      bf16_to_f32(py + r * n + c0, row, len);
      for (int64_t i = 0; i < len; ++i) row[i] += pb[c0 + i];
      f32_to_bf16(row, py + r * n + c0, len);
    }
  }
}

Tensor CpuBf16Backend::activation_forward(Activation a, const Tensor& x) {
  if (!is_bf16(x)) return CpuBackend::activation_forward(a, x);
  Tensor out = Tensor::empty(x.shape(), DType::bf16);
  with_activation(a, [&](auto act) {
    map_bf16<1, 1>(out.numel(), {bits(x)}, {bits_mut(out)},
                   [act](const auto& in, const auto& o, int64_t len) {
                     const float* __restrict xs = in[0];
                     float* __restrict ys = o[0];
                     for (int64_t i = 0; i < len; ++i) ys[i] = act_forward<act()>(xs[i]);
                   });
  });
  return out;
}

Tensor CpuBf16Backend::activation_backward(Activation a, const Tensor& dout, const Tensor& x) {
  if (!is_bf16(x)) return CpuBackend::activation_backward(a, dout, x);
  Tensor dx = Tensor::empty(x.shape(), DType::bf16);
  with_activation(a, [&](auto act) {
    map_bf16<2, 1>(dx.numel(), {bits(x), bits(dout)}, {bits_mut(dx)},
                   [act](const auto& in, const auto& o, int64_t len) {
                     const float* __restrict xs = in[0];
                     const float* __restrict gr = in[1];
                     float* __restrict d = o[0];
                     for (int64_t i = 0; i < len; ++i) d[i] = gr[i] * act_derivative<act()>(xs[i]);
                   });
  });
  return dx;
}

Tensor CpuBf16Backend::swiglu_forward(const Tensor& gate, const Tensor& up) {
  if (!is_bf16(gate)) return CpuBackend::swiglu_forward(gate, up);
  Tensor out = Tensor::empty(gate.shape(), DType::bf16);
  map_bf16<2, 1>(out.numel(), {bits(gate), bits(up)}, {bits_mut(out)},
                 [](const auto& in, const auto& o, int64_t len) {
                   const float* __restrict g = in[0];
                   const float* __restrict u = in[1];
                   float* __restrict y = o[0];
                   for (int64_t i = 0; i < len; ++i)
                     y[i] = act_forward<Activation::silu>(g[i]) * u[i];
                 });
  return out;
}

std::array<Tensor, 2> CpuBf16Backend::swiglu_backward(const Tensor& dout, const Tensor& gate,
                                                      const Tensor& up) {
  if (!is_bf16(gate)) return CpuBackend::swiglu_backward(dout, gate, up);
  Tensor dgate = Tensor::empty(gate.shape(), DType::bf16);
  Tensor dup = Tensor::empty(gate.shape(), DType::bf16);
  map_bf16<3, 2>(dgate.numel(), {bits(gate), bits(up), bits(dout)},
                 {bits_mut(dgate), bits_mut(dup)}, [](const auto& in, const auto& o, int64_t len) {
                   const float* __restrict g = in[0];
                   const float* __restrict u = in[1];
                   const float* __restrict go = in[2];
                   float* __restrict dg = o[0];
                   float* __restrict du = o[1];
                   for (int64_t i = 0; i < len; ++i) {
                     const float s = sigmoid(g[i]);
                     dg[i] = go[i] * u[i] * (s * (1.0f + g[i] * (1.0f - s)));
                     du[i] = go[i] * (g[i] * s);
                   }
                 });
  return {dgate, dup};
}

// ---- the bf16 GEMM ----

Tensor CpuBf16Backend::matmul(const MatmulPlan& p) {
  if (!is_bf16(p.a.t)) return CpuBackend::matmul(p);
  Tensor out = Tensor::empty(p.out_shape, DType::bf16);
  const auto* pa = static_cast<const uint16_t*>(p.a.t.storage()->data);
  const auto* pb = static_cast<const uint16_t*>(p.b.t.storage()->data);
  uint16_t* po = bits_mut(out);
  for (int64_t i = 0; i < p.batches(); ++i)
    gemm_bf16(p.a.trans, p.b.trans, p.m, p.n, p.k, pa + p.a_offset(i), p.a.ld, pb + p.b_offset(i),
              p.b.ld, po + i * p.m * p.n, p.n);
  return out;
}

// ---- the rest: widened to fp32, CpuBackend's f32 primitive, rounded ----

Tensor CpuBf16Backend::sum_dim(const Tensor& a, int64_t dim) {
  if (!is_bf16(a)) return CpuBackend::sum_dim(a, dim);
  return narrow(CpuBackend::sum_dim(widen(a), dim));
}

Tensor CpuBf16Backend::softmax_forward(const Tensor& x) {
  if (!is_bf16(x)) return CpuBackend::softmax_forward(x);
  return narrow(CpuBackend::softmax_forward(widen(x)));
}

Tensor CpuBf16Backend::softmax_backward(const Tensor& dout, const Tensor& y) {
  if (!is_bf16(y)) return CpuBackend::softmax_backward(dout, y);
  return narrow(CpuBackend::softmax_backward(widen(dout), widen(y)));
}

Backend::Norm CpuBf16Backend::rmsnorm_forward(const Tensor& x, const Tensor& weight, double eps) {
  if (!is_bf16(x)) return CpuBackend::rmsnorm_forward(x, weight, eps);
  Norm s = CpuBackend::rmsnorm_forward(widen(x), widen(weight), eps);
  s.out = narrow(s.out);
  return s;
}

std::array<Tensor, 2> CpuBf16Backend::rmsnorm_backward(const Tensor& dout, const Tensor& x,
                                                       const Tensor& weight, const Norm& saved) {
  if (!is_bf16(x)) return CpuBackend::rmsnorm_backward(dout, x, weight, saved);
  const auto [dx, dw] = CpuBackend::rmsnorm_backward(widen(dout), widen(x), widen(weight), saved);
  return {narrow(dx), narrow(dw)};
}

Backend::Norm CpuBf16Backend::layernorm_forward(const Tensor& x, const Tensor& weight,
                                                const Tensor& bias, double eps) {
  if (!is_bf16(x)) return CpuBackend::layernorm_forward(x, weight, bias, eps);
  Norm s = CpuBackend::layernorm_forward(widen(x), widen(weight), widen(bias), eps);
  s.out = narrow(s.out);
  return s;
}

std::array<Tensor, 3> CpuBf16Backend::layernorm_backward(const Tensor& dout, const Tensor& x,
                                                         const Tensor& weight, const Norm& saved) {
  if (!is_bf16(x)) return CpuBackend::layernorm_backward(dout, x, weight, saved);
  const auto [dx, dw, db] =
      CpuBackend::layernorm_backward(widen(dout), widen(x), widen(weight), saved);
  return {narrow(dx), narrow(dw), narrow(db)};
}

Tensor CpuBf16Backend::rope(const Tensor& x, double theta, int64_t start_pos,
                            const Tensor& positions, bool inverse) {
  if (!is_bf16(x)) return CpuBackend::rope(x, theta, start_pos, positions, inverse);
  return narrow(CpuBackend::rope(widen(x), theta, start_pos, positions, inverse));
}

Backend::Attention CpuBf16Backend::attention_forward(const Tensor& q, const Tensor& k,
                                                     const Tensor& v, bool causal,
                                                     const Tensor& seq_start) {
  if (!is_bf16(q)) return CpuBackend::attention_forward(q, k, v, causal, seq_start);
  Attention a = CpuBackend::attention_forward(widen(q), widen(k), widen(v), causal, seq_start);
  a.out = narrow(a.out);  // the log-sum-exp stays fp32
  return a;
}

std::array<Tensor, 3> CpuBf16Backend::attention_backward(const Tensor& dout, const Tensor& q,
                                                         const Tensor& k, const Tensor& v,
                                                         const Attention& saved, bool causal,
                                                         const Tensor& seq_start) {
  if (!is_bf16(q)) return CpuBackend::attention_backward(dout, q, k, v, saved, causal, seq_start);
  const Attention saved32{widen(saved.out), saved.lse};
  const auto [dq, dk, dv] = CpuBackend::attention_backward(widen(dout), widen(q), widen(k),
                                                           widen(v), saved32, causal, seq_start);
  return {narrow(dq), narrow(dk), narrow(dv)};
}

Tensor CpuBf16Backend::embedding_forward(const Tensor& weight, const Tensor& ids) {
  if (!is_bf16(weight)) return CpuBackend::embedding_forward(weight, ids);
  const int64_t H = weight.size(1), n = ids.numel();
  const int64_t* id = ids.data<int64_t>();
  Tensor out = Tensor::empty({n, H}, DType::bf16);
  const uint16_t* pw = bits(weight);
  uint16_t* po = bits_mut(out);
#pragma omp parallel for if (n > 64) schedule(static)
  for (int64_t i = 0; i < n; ++i) std::copy_n(pw + id[i] * H, H, po + i * H);
  return out;
}

Tensor CpuBf16Backend::embedding_backward(const Tensor& dout, const Tensor& ids, int64_t vocab) {
  if (!is_bf16(dout)) return CpuBackend::embedding_backward(dout, ids, vocab);
  return narrow(CpuBackend::embedding_backward(widen(dout), ids, vocab));
}

Backend::CrossEntropy CpuBf16Backend::cross_entropy_forward(const Tensor& logits,
                                                            const Tensor& targets, double denom) {
  if (!is_bf16(logits)) return CpuBackend::cross_entropy_forward(logits, targets, denom);
  return CpuBackend::cross_entropy_forward(widen(logits), targets, denom);  // f32 loss and lse
}

Tensor CpuBf16Backend::cross_entropy_backward(const Tensor& dloss, const Tensor& logits,
                                              const Tensor& targets, const CrossEntropy& saved,
                                              double denom) {
  if (!is_bf16(logits))
    return CpuBackend::cross_entropy_backward(dloss, logits, targets, saved, denom);
  return narrow(CpuBackend::cross_entropy_backward(dloss, widen(logits), targets, saved, denom));
}

Tensor CpuBf16Backend::index_add_rows(int64_t rows, const Tensor& idx, const Tensor& src) {
  if (!is_bf16(src)) return CpuBackend::index_add_rows(rows, idx, src);
  return narrow(CpuBackend::index_add_rows(rows, idx, widen(src)));
}

// ---- the optimizer ----

double CpuBf16Backend::grad_norm(const std::vector<Tensor>& grads) {
  std::vector<Tensor> wide;
  wide.reserve(grads.size());
  for (const Tensor& g : grads) wide.push_back(widen(g));
  return CpuBackend::grad_norm(wide);
}

void CpuBf16Backend::adamw_update(std::span<const AdamWSlot> slots, const AdamWHyper& h) {
  // bf16 parameters: their fp32 masters take the f32 update, then are rounded into them.
  std::vector<AdamWSlot> f32_slots;
  f32_slots.reserve(slots.size());
  for (const AdamWSlot& s : slots) {
    if (!is_bf16(s.param)) {
      f32_slots.push_back(s);
      continue;
    }
    MV_CHECK(s.master.defined() && s.master.dtype() == DType::f32 && s.master.is_contiguous() &&
                 s.master.numel() == s.param.numel() && s.param.is_contiguous(),
             "adamw: bf16 parameter ", s.param.desc(), " needs contiguous f32 master weights, got ",
             s.master.defined() ? s.master.desc() : "none");
    f32_slots.push_back({s.master, Tensor(), widen(s.grad), s.m, s.v});
  }
  CpuBackend::adamw_update(f32_slots, h);
  for (const AdamWSlot& s : slots) {
    if (!is_bf16(s.param)) continue;
    const float* pm = s.master.data<float>();
    uint16_t* pp = bits_mut(s.param);
    parallel_ranges(s.param.numel(), 1 << 16,
                    [&](int64_t i0, int64_t i1) { f32_to_bf16(pm + i0, pp + i0, i1 - i0); });
  }
}

namespace {

// `minivlm info`: which bf16 paths this CPU takes.
std::string cpu_summary() {
  return std::string("available; bf16 GEMM: ") + bf16_gemm_description() +
         "; bf16 conversions: " + bf16_convert_path();
}

const bool registered = [] {
  static CpuBf16Backend cpu;
  register_backend(DeviceType::cpu, &cpu);
  register_device_summary(DeviceType::cpu, &cpu_summary);
  return true;
}();

}  // namespace

}  // namespace minivlm::cpu
