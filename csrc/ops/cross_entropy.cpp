// Masked softmax cross-entropy over logits, fused: forward keeps one log-sum-exp per row; backward
// writes (softmax − onehot) · g / denominator straight into the gradient, so probabilities are
// materialised once, in the gradient buffer itself.
#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/node.h"
#include "cpu/vec_exp.h"
#include "cuda/ops.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace minivlm::ops {

using detail::check_cpu;
using detail::dispatch_float;

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                     double denominator) {
  if (logits.device().is_cuda_backend())
    return cuda::cross_entropy(logits, targets, ignore_index, denominator);
  check_cpu("cross_entropy", logits);
  check_cpu("cross_entropy", targets);
  MV_CHECK(logits.dim() == 2, "cross_entropy: logits must be [N, V], got ", logits.desc());
  MV_CHECK(targets.dim() == 1 && targets.size(0) == logits.size(0), "cross_entropy: targets ",
           targets.desc(), " do not match logits ", logits.desc());
  const int64_t N = logits.size(0), V = logits.size(1);
  const std::vector<int64_t> tv = targets.to_int_vector();
  int64_t count = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (tv[i] == ignore_index) continue;
    MV_CHECK(tv[i] >= 0 && tv[i] < V, "cross_entropy: target ", tv[i], " at row ", i,
             " is outside [0, ", V, ")");
    ++count;
  }
  const double denom = denominator > 0 ? denominator : static_cast<double>(count);
  const Tensor lc = logits.detach().contiguous();
  Tensor lse = Tensor::empty({N}, logits.dtype());
  std::vector<double> row_loss(static_cast<size_t>(N), 0.0);
  dispatch_float("cross_entropy", logits, [&](auto zero) {
    using T = decltype(zero);
    const T* px = lc.data<T>();
    T* pl = lse.data<T>();
#pragma omp parallel for if (N > 4) schedule(static)
    for (int64_t i = 0; i < N; ++i) {
      if (tv[i] == ignore_index) continue;
      const T* row = px + i * V;
      T mx = row[0];
      for (int64_t j = 1; j < V; ++j) mx = std::max(mx, row[j]);
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j < V; ++j) s += static_cast<double>(cpu::exp_fast(row[j] - mx));
      const double l = static_cast<double>(mx) + std::log(s);
      pl[i] = static_cast<T>(l);
      row_loss[static_cast<size_t>(i)] = l - static_cast<double>(row[tv[i]]);
    }
  });
  double total = 0;  // summed in row order: the same bits for every thread count
  for (double l : row_loss) total += l;
  const double loss = denom > 0 ? total / denom : 0.0;
  Tensor out = Tensor::full({}, loss, logits.dtype());
  return record(out, "cross_entropy", {logits, targets}, [=](const Tensor& g) {
    if (denom <= 0) return std::vector<Tensor>{Tensor::zeros({N, V}, lc.dtype()), Tensor()};
    Tensor dx = Tensor::empty({N, V}, lc.dtype());
    const double gs = g.item() / denom;
    dispatch_float("cross_entropy", lc, [&](auto zero) {
      using T = decltype(zero);
      const T* px = lc.data<T>();
      const T* pl = lse.data<T>();
      T* pd = dx.data<T>();
#pragma omp parallel for if (N > 4) schedule(static)
      for (int64_t i = 0; i < N; ++i) {
        const T* row = px + i * V;
        T* drow = pd + i * V;
        if (tv[i] == ignore_index) {
          std::fill_n(drow, V, T(0));
          continue;
        }
        const T l = pl[i];
#pragma omp simd
        for (int64_t j = 0; j < V; ++j)
          drow[j] = static_cast<T>(gs * static_cast<double>(cpu::exp_fast(row[j] - l)));
        drow[tv[i]] -= static_cast<T>(gs);
      }
    });
    return std::vector<Tensor>{dx, Tensor()};
  });
}

}  // namespace minivlm::ops
