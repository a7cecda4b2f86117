// Autograd graph nodes.
//
// Every differentiable op records one Node for its output: the inputs it read and a closure that
// maps the gradient of the output to one gradient per input (an undefined Tensor means "no
// gradient"). Closures capture what forward saved; they must capture the output only through
// detach(), so that a tensor never owns itself through its own grad_fn.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace minivlm {

struct Node {
  using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;
  std::string op;              // "matmul", "rmsnorm", ...: shown in errors
  std::vector<Tensor> inputs;  // the op's tensor inputs, in order
  BackwardFn backward;
};

// Grad mode: ops record nodes only while it is enabled (thread-local, on by default).
bool grad_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// True when an op over `inputs` must record a node (grad mode on and any input requires grad).
bool needs_grad(std::initializer_list<Tensor> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Attaches a node to `out` when needed; returns `out`. Inputs that do not require grad are skipped
// by the engine (their gradient is never requested from the closure's result).
Tensor record(Tensor out, const std::string& op, std::vector<Tensor> inputs,
              Node::BackwardFn backward);

// Runs backward from `root` with `grad_root`; accumulates into .grad of leaves that require grad.
void run_backward(const Tensor& root, const Tensor& grad_root, bool retain_graph);

// The dtype of a leaf's .grad: f32 for a floating leaf stored narrower than f32 (bf16, f16), the
// leaf's own dtype otherwise. A narrow leaf's gradient is summed in f32 wherever it accumulates:
// the contributions of the leaf's several uses in one backward pass (a tied embedding), and the
// passes of the micro-batches of a step (gradient accumulation), so it is rounded never, whatever
// the number of micro-batches. Gradients of intermediate tensors keep their tensor's dtype: each
// is consumed by the next node and never summed over passes. Consumers of .grad (the gradient
// reducer, the norm, the optimizer) take f32 gradients of bf16 parameters.
DType grad_dtype(DType leaf_dtype);

// Called by run_backward, on its thread, once for each leaf that receives a gradient in the pass,
// right after the leaf's .grad took it. The engine reaches a leaf only after every node that feeds
// it, so .grad then holds its final value for the pass: data-parallel training starts reducing it
// while the rest of backward runs. Installed per thread for the guard's scope.
using GradReadyHook = std::function<void(TensorImpl& leaf)>;
class GradReadyHookGuard {
 public:
  explicit GradReadyHookGuard(GradReadyHook hook);
  ~GradReadyHookGuard();
  GradReadyHookGuard(const GradReadyHookGuard&) = delete;
  GradReadyHookGuard& operator=(const GradReadyHookGuard&) = delete;

 private:
  GradReadyHook prev_;
};

}  // namespace minivlm
