// Masked softmax cross-entropy over logits, one fused node (cpu/cross_entropy.cpp,
// kernels/cross_entropy.cuh).
#include "autograd/node.h"
#include "ops/checks.h"
#include "ops/ops.h"

namespace minivlm::ops {

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                     double denominator) {
  Backend& be = detail::backend_of("cross_entropy", {&logits});
  MV_CHECK(logits.dim() == 2, "cross_entropy: logits must be [N, V], got ", logits.desc());
  MV_CHECK(targets.defined() && targets.dim() == 1 && targets.size(0) == logits.size(0),
           "cross_entropy: targets ", targets.defined() ? targets.desc() : "undefined",
           " do not match logits ", logits.desc());
  std::vector<int64_t> tv = detail::index_values("cross_entropy", "targets", targets);
  const int64_t V = logits.size(1);
  int64_t count = 0;
  for (size_t i = 0; i < tv.size(); ++i) {
    if (tv[i] == ignore_index) {
      tv[i] = kIgnoredRow;
      continue;
    }
    MV_CHECK(tv[i] >= 0 && tv[i] < V, "cross_entropy: target ", tv[i], " at row ", i,
             " is outside [0, ", V, ")");
    ++count;
  }
  const double denom = denominator > 0 ? denominator : static_cast<double>(count);
  const Tensor lc = logits.detach().contiguous(), idx = be.indices(tv, logits.device());
  Backend::CrossEntropy saved = be.cross_entropy_forward(lc, idx, denom);
  Tensor loss = saved.loss;
  saved.loss = Tensor();  // the node must not own its own output
  return record(loss, "cross_entropy", {logits, targets}, [=, &be](const Tensor& g) {
    return std::vector<Tensor>{be.cross_entropy_backward(g, lc, idx, saved, denom), Tensor()};
  });
}

}  // namespace minivlm::ops
