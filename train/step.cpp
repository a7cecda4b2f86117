#include "train/step.h"

#include <cmath>
#include <vector>

#include "data/loader.h"
#include "ops/ops.h"

namespace minivlm {

TrainStep::TrainStep(const MiniMindVLM& model, AdamW& optim, Communicator& comm, double grad_clip,
                     size_t bucket_bytes)
    : model_(model),
      optim_(optim),
      comm_(comm),
      reducer_(comm, optim.params(), bucket_bytes),
      grad_clip_(grad_clip) {}

StepResult TrainStep::run(std::span<const MicroInput> micro, double lr) {
  StepResult r = forward_backward_and_reduce(micro);
  r.grad_norm = grad_norm();
  r.applied = update(r, lr);
  return r;
}

StepResult TrainStep::run(const Step& step, double lr) {
  std::vector<MicroInput> micro;
  for (const MicroBatch& mb : step.micro)
    micro.push_back({mb.empty() ? nullptr : &mb.batch, mb.supervised_tokens});
  return run(micro, lr);
}

StepResult TrainStep::forward_backward_and_reduce(std::span<const MicroInput> micro) {
  // The global supervised-token count normalises every micro-batch's summed loss (SPEC §4.2).
  int64_t mine = 0, computed = 0;
  for (const MicroInput& m : micro) {
    mine += m.supervised_tokens;
    computed += m.batch != nullptr;
  }
  std::vector<double> count = {static_cast<double>(mine), static_cast<double>(computed)};
  comm_.all_reduce_sum(count);
  const double denom = count[0], micro_batches = count[1];
  // Reductions start during this rank's last backward pass of the step; earlier ones accumulate.
  const MicroInput* last = nullptr;
  for (const MicroInput& m : micro)
    if (m.batch != nullptr) last = &m;
  double loss_sum = 0, aux_sum = 0;
  for (const MicroInput& m : micro) {
    if (m.batch == nullptr || denom <= 0) continue;
    const VlmOutput out = model_.forward(*m.batch, denom, MiniMindVLM::Logits::none);
    loss_sum += out.loss.item();
    Tensor total = out.loss;
    if (out.aux_loss.defined()) {
      const Tensor aux = ops::scale(ops::cast(out.aux_loss, out.loss.dtype()), 1.0 / micro_batches);
      aux_sum += aux.item();
      total = ops::add(total, aux);
    }
    reducer_.backward(total, &m == last);
  }
  reducer_.reduce();  // every gradient is now the sum over ranks
  std::vector<double> loss = {loss_sum, aux_sum};
  comm_.all_reduce_sum(loss);
  StepResult r;
  r.loss = loss[0];
  r.aux_loss = loss[1];
  r.tokens = static_cast<int64_t>(denom);
  return r;
}

double TrainStep::grad_norm() const { return minivlm::grad_norm(optim_.params()); }

bool TrainStep::update(const StepResult& r, double lr) {
  // Decided before anything is written: a skipped step leaves weights, moments, master weights and
  // the step count as they were.
  const double scale = clip_factor(r.grad_norm, grad_clip_);
  const bool finite = std::isfinite(r.loss) && std::isfinite(r.aux_loss) &&
                      std::isfinite(r.grad_norm) && r.grad_norm * scale <= kMaxAppliedGradNorm;
  if (finite) optim_.step(lr, scale);
  optim_.zero_grad();
  return finite;
}

}  // namespace minivlm
