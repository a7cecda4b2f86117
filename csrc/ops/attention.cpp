// Scaled-dot-product attention (causal or bidirectional, GQA) as one fused node: the forward saves
// only the per-row log-sum-exp, from which the backward recomputes the probabilities, so [Tq, Tk]
// is never stored (cpu/attention.cpp, kernels/flash_attention.cuh).
#include "autograd/node.h"
#include "ops/checks.h"
#include "ops/ops.h"

namespace minivlm::ops {

namespace {

// seq_start's values as the back-end's index list, after checking that they describe packed rows.
Tensor segment_starts(Backend& be, const Tensor& q, const Tensor& k, bool causal,
                      const Tensor& seq_start) {
  const int64_t B = q.size(0), T = q.size(1);
  MV_CHECK(causal && k.size(1) == T, "attention: seq_start (packed rows) needs causal attention ",
           "with as many queries as keys, got ", causal ? "causal" : "bidirectional", " q ",
           shape_str(q.shape()), " k ", shape_str(k.shape()));
  MV_CHECK(seq_start.dim() == 2 && seq_start.size(0) == B && seq_start.size(1) == T,
           "attention: seq_start must be [", B, ", ", T, "] for q ", shape_str(q.shape()), ", got ",
           seq_start.desc());
  const std::vector<int64_t> v = detail::index_values("attention", "seq_start", seq_start);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < T; ++i) {
      const int64_t s = v[b * T + i];
      MV_CHECK(s >= 0 && s <= i && (i == 0 || s >= v[b * T + i - 1]), "attention: seq_start[", b,
               ", ", i, "] = ", s, " is not the start of a sample holding token ", i,
               " (values must lie in [0, i] and not decrease along the row)");
    }
  return be.indices(v, q.device());
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                 const Tensor& seq_start) {
  Backend& be = detail::backend_of("attention", {&q, &k, &v});
  for (const Tensor* t : {&q, &k, &v})
    MV_CHECK(t->dim() == 4, "attention: expected [B, T, heads, head_dim], got ", t->desc());
  detail::check_same_dtype("attention", q, k);
  detail::check_same_dtype("attention", q, v);
  MV_CHECK(k.size(0) == q.size(0) && k.size(3) == q.size(3), "attention: k ", shape_str(k.shape()),
           " does not match q ", shape_str(q.shape()));
  detail::check_shape("attention", "v", v, k.shape());
  MV_CHECK(k.size(2) > 0 && q.size(2) % k.size(2) == 0, "attention: ", q.size(2),
           " query heads are not a multiple of ", k.size(2), " kv heads");
  const Tensor qc = q.detach().contiguous(), kc = k.detach().contiguous(),
               vc = v.detach().contiguous();
  const Tensor starts =
      seq_start.defined() ? segment_starts(be, q, k, causal, seq_start) : Tensor();
  Backend::Attention saved = be.attention_forward(qc, kc, vc, causal, starts);
  Tensor out = saved.out;
  saved.out = out.detach();
  return record(out, "attention", {q, k, v}, [=, &be](const Tensor& g) {
    const auto [dq, dk, dv] =
        be.attention_backward(g.contiguous(), qc, kc, vc, saved, causal, starts);
    return std::vector<Tensor>{dq, dk, dv};
  });
}

}  // namespace minivlm::ops
