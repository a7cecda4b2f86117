// Scaled-dot-product attention (causal or bidirectional, GQA) as one fused node: the forward saves
// only the per-row log-sum-exp, from which the backward recomputes the probabilities, so [Tq, Tk]
// is never stored (cpu/attention.cpp, kernels/flash_attention.cuh).
#include "autograd/node.h"
#include "ops/checks.h"
#include "ops/ops.h"

namespace minivlm::ops {

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
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
  Backend::Attention saved = be.attention_forward(qc, kc, vc, causal);
  Tensor out = saved.out;
  saved.out = out.detach();
  return record(out, "attention", {q, k, v}, [=, &be](const Tensor& g) {
    const auto [dq, dk, dv] = be.attention_backward(g.contiguous(), qc, kc, vc, saved, causal);
    return std::vector<Tensor>{dq, dk, dv};
  });
}

}  // namespace minivlm::ops
