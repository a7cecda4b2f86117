#include "dist/grad_reducer.h"

#include <cstdlib>
#include <sstream>
#include <string>

#include "autograd/node.h"

namespace minivlm {

size_t gradient_bucket_bytes() {
  const char* v = std::getenv("MINIVLM_BUCKET_MB");
  if (v == nullptr) return size_t{25} << 20;
  char* end = nullptr;
  const double mb = std::strtod(v, &end);
  MV_CHECK(end != v && *end == '\0' && mb > 0,
           "MINIVLM_BUCKET_MB must be a positive number of megabytes, got '", v, "'");
  return static_cast<size_t>(mb * (1 << 20));
}

GradReducer::GradReducer(Communicator& comm, ParamList params, size_t bucket_bytes)
    : comm_(comm), params_(std::move(params)), bucket_bytes_(bucket_bytes) {
  for (size_t i = 0; i < params_.size(); ++i) index_[params_[i].tensor.impl_ptr().get()] = i;
  final_.assign(params_.size(), false);
  bucket_of_.assign(params_.size(), 0);
}

void GradReducer::backward(const Tensor& loss, bool overlap) {
  // A loss that reaches no trainable parameter (text-only samples when only the projector trains)
  // has no gradient: the parameters keep none from it, and reduce() counts theirs as zero.
  if (!loss.requires_grad()) return;
  if (!overlap || comm_.world_size() == 1) {
    loss.backward();
    return;
  }
  GradReadyHookGuard hook([this](TensorImpl& leaf) { on_grad_final(leaf); });
  loss.backward();
}

void GradReducer::on_grad_final(TensorImpl& leaf) {
  const auto it = index_.find(&leaf);
  if (it == index_.end() || final_[it->second]) return;
  final_[it->second] = true;
  if (buckets_.empty()) {
    final_order_.push_back(it->second);  // the first step: learning the order
    return;
  }
  ++buckets_[bucket_of_[it->second]].final_count;
  start_ready_buckets();
}

void GradReducer::build_layout() {
  // Rank 0's order decides, so every rank builds the same buckets.
  std::string order;
  if (comm_.is_main()) {
    for (size_t k = params_.size(); k-- > 0;)
      if (!final_[k]) final_order_.push_back(k);
    for (size_t k : final_order_) order += std::to_string(k) + " ";
  }
  comm_.broadcast(order, 0);
  std::istringstream in(order);
  std::vector<int64_t> numel;  // per bucket
  size_t bytes = 0;
  for (size_t k; in >> k;) {
    MV_CHECK(k < params_.size(), "gradient bucket layout from rank 0 names parameter ", k, " of ",
             params_.size(), ": the ranks' parameter lists differ");
    const Tensor& p = params_[k].tensor;
    const Tensor* head =
        buckets_.empty() ? nullptr : &params_[buckets_.back().slots[0].param].tensor;
    // Sizes and dtypes are the gradients' (grad_dtype: f32 for bf16 parameters).
    const DType dtype = grad_dtype(p.dtype());
    const size_t grad_bytes = static_cast<size_t>(p.numel()) * dtype_size(dtype);
    const bool fits = head != nullptr && bytes + grad_bytes <= bucket_bytes_ &&
                      dtype == grad_dtype(head->dtype()) && p.device() == head->device();
    if (!fits) {
      buckets_.emplace_back();
      numel.push_back(0);
      bytes = 0;
    }
    buckets_.back().slots.push_back({k, numel.back()});
    numel.back() += p.numel();
    bytes += grad_bytes;
    bucket_of_[k] = buckets_.size() - 1;
  }
  for (size_t b = 0; b < buckets_.size(); ++b) {
    const Tensor& head = params_[buckets_[b].slots[0].param].tensor;
    buckets_[b].flat = Tensor::empty({numel[b]}, grad_dtype(head.dtype()), head.device());
  }
  final_order_.clear();
}

void GradReducer::start_ready_buckets() {
  while (next_ < buckets_.size() && buckets_[next_].final_count == buckets_[next_].slots.size())
    start(buckets_[next_++]);
  // MPI advances a started reduction only inside MPI calls: give the oldest unfinished one a turn.
  for (size_t b = 0; b < next_; ++b)
    if (!buckets_[b].pending->test()) break;
}

void GradReducer::start(Bucket& b) {
  NoGradGuard no_grad;
  for (const Slot& s : b.slots) {
    const Tensor& p = params_[s.param].tensor;
    // A gradient still pointing at its slice (reduced before, nothing added since) is in place.
    if (p.grad().defined() && p.grad().storage() == b.flat.storage()) continue;
    Tensor dst = b.flat.narrow(0, s.offset, p.numel());
    if (p.grad().defined())
      dst.copy_(p.grad().reshape({p.numel()}));  // converts a gradient set in another dtype
    else
      dst.zero_();  // no gradient reached it on this rank
  }
  b.pending = comm_.start_all_reduce_sum(b.flat);
}

void GradReducer::reduce() {
  if (comm_.world_size() > 1) {
    if (buckets_.empty()) build_layout();
    for (; next_ < buckets_.size(); ++next_) start(buckets_[next_]);
    for (Bucket& b : buckets_) {
      b.pending->wait();
      b.pending.reset();
      b.final_count = 0;
      for (const Slot& s : b.slots) {
        Tensor& p = params_[s.param].tensor;
        p.set_grad(make_view(b.flat, p.shape(), contiguous_strides(p.shape()), s.offset));
      }
    }
    next_ = 0;
  }
  // Alone, a parameter that received no gradient gets zeros, as a reduction would give it.
  for (NamedTensor& p : params_)
    if (!p.tensor.grad().defined())
      p.tensor.set_grad(
          Tensor::zeros(p.tensor.shape(), grad_dtype(p.tensor.dtype()), p.tensor.device()));
  final_.assign(params_.size(), false);
}

std::vector<std::vector<size_t>> GradReducer::layout() const {
  std::vector<std::vector<size_t>> out;
  for (const Bucket& b : buckets_) {
    out.emplace_back();
    for (const Slot& s : b.slots) out.back().push_back(s.param);
  }
  return out;
}

}  // namespace minivlm
