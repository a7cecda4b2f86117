// The backward engine: a topological order over the graph, then one closure call per node.
#include <unordered_map>
#include <unordered_set>

#include "autograd/node.h"
#include "ops/ops.h"

namespace minivlm {

namespace {
thread_local bool g_grad_enabled = true;
thread_local GradReadyHook g_grad_ready;
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }
GradReadyHookGuard::GradReadyHookGuard(GradReadyHook hook) : prev_(std::move(g_grad_ready)) {
  g_grad_ready = std::move(hook);
}
GradReadyHookGuard::~GradReadyHookGuard() { g_grad_ready = std::move(prev_); }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}
bool needs_grad(std::initializer_list<Tensor> inputs) {
  return needs_grad(std::vector<Tensor>(inputs));
}

Tensor record(Tensor out, const std::string& op, std::vector<Tensor> inputs,
              Node::BackwardFn backward) {
  if (!needs_grad(inputs)) return out;
  auto node = std::make_shared<Node>();
  node->op = op;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  out.impl().grad_fn = std::move(node);
  out.impl().requires_grad = true;
  return out;
}

DType grad_dtype(DType leaf_dtype) {
  return leaf_dtype == DType::bf16 || leaf_dtype == DType::f16 ? DType::f32 : leaf_dtype;
}

void run_backward(const Tensor& root, const Tensor& grad_root, bool retain_graph) {
  MV_CHECK(root.requires_grad(), "backward() on a tensor that does not require grad");
  MV_CHECK(grad_root.shape() == root.shape(), "backward: gradient ", grad_root.desc(),
           " does not match output ", root.desc());

  // Post-order DFS (iterative: graphs of deep models exceed a comfortable recursion depth).
  std::vector<TensorImpl*> order;
  std::unordered_set<TensorImpl*> seen;
  std::vector<std::pair<TensorImpl*, size_t>> stack{{root.impl_ptr().get(), 0}};
  seen.insert(root.impl_ptr().get());
  while (!stack.empty()) {
    auto& [t, next] = stack.back();
    const Node* node = t->grad_fn.get();
    if (node != nullptr && next < node->inputs.size()) {
      TensorImpl* in = node->inputs[next++].impl_ptr().get();
      if (in != nullptr && in->requires_grad && seen.insert(in).second) stack.push_back({in, 0});
      continue;
    }
    order.push_back(t);
    stack.pop_back();
  }

  std::unordered_map<TensorImpl*, Tensor> grads;
  grads[root.impl_ptr().get()] = grad_root;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    TensorImpl* t = *it;
    auto found = grads.find(t);
    if (found == grads.end()) continue;  // no path carried a gradient here
    Tensor g = std::move(found->second);
    grads.erase(found);
    if (t->grad_fn == nullptr) {
      // A leaf owns its gradient's storage (optimizers and clipping modify .grad in place), held
      // in grad_dtype: a bf16 leaf's first gradient is widened exactly, later ones (the next
      // micro-batches') are added in f32.
      NoGradGuard ng;
      const DType want = grad_dtype(t->dtype);
      if (t->grad == nullptr) {
        t->grad = (g.dtype() == want ? g.clone() : g.to(want)).impl_ptr();
      } else {
        t->grad = ops::add(Tensor(t->grad).to(want), g.to(want)).impl_ptr();
      }
      if (g_grad_ready) g_grad_ready(*t);
      continue;
    }
    Node& node = *t->grad_fn;
    std::vector<Tensor> in_grads;
    {
      NoGradGuard ng;  // backward closures compute plain tensors
      in_grads = node.backward(g);
    }
    MV_CHECK(in_grads.size() == node.inputs.size(), "backward of '", node.op, "' returned ",
             in_grads.size(), " gradients for ", node.inputs.size(), " inputs");
    for (size_t i = 0; i < in_grads.size(); ++i) {
      const Tensor& in = node.inputs[i];
      if (!in.defined() || !in.requires_grad() || !in_grads[i].defined()) continue;
      MV_CHECK(in_grads[i].shape() == in.shape(), "backward of '", node.op, "': gradient ",
               in_grads[i].desc(), " for input ", i, " of shape ", shape_str(in.shape()));
      TensorImpl* key = in.impl_ptr().get();
      auto slot = grads.find(key);
      if (slot == grads.end()) {
        grads.emplace(key, in_grads[i]);
      } else {
        // A leaf used several times in the pass sums its contributions in its grad_dtype.
        NoGradGuard ng;
        const DType sum = in.is_leaf() ? grad_dtype(in.dtype()) : slot->second.dtype();
        slot->second = ops::add(slot->second.to(sum), in_grads[i].to(sum));
      }
    }
  }
  if (!retain_graph) {
    for (TensorImpl* t : order) t->grad_fn.reset();
  }
}

void Tensor::backward(const Tensor& grad_output, bool retain_graph) const {
  Tensor g = grad_output;
  if (!g.defined()) {
    MV_CHECK(numel() == 1, "backward() without a gradient needs a scalar, got ", desc());
    g = Tensor::ones(shape(), dtype(), device());
  }
  run_backward(*this, g, retain_graph);
}

}  // namespace minivlm
