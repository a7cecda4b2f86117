// Masked softmax cross-entropy over logits, fused: forward keeps one log-sum-exp per row; backward
// writes (softmax − onehot) · g / denominator straight into the gradient, so probabilities are
// materialised once, in the gradient buffer itself.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/backend.h"
#include "cpu/vec_exp.h"

namespace minivlm::cpu {

Backend::CrossEntropy CpuBackend::cross_entropy_forward(const Tensor& logits, const Tensor& targets,
                                                        double denom) {
  const int64_t N = logits.size(0), V = logits.size(1);
  const int64_t* tv = targets.data<int64_t>();
  Tensor lse = Tensor::empty({N}, logits.dtype());
  std::vector<double> row_loss(static_cast<size_t>(N), 0.0);
  dispatch_float("cross_entropy", logits, [&](auto zero) {
    using T = decltype(zero);
    const T* px = logits.data<T>();
    T* pl = lse.data<T>();
#pragma omp parallel for if (N > 4) schedule(static)
    for (int64_t i = 0; i < N; ++i) {
      if (tv[i] == kIgnoredRow) continue;
      const T* row = px + i * V;
      T mx = row[0];
      for (int64_t j = 1; j < V; ++j) mx = std::max(mx, row[j]);
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j < V; ++j) s += static_cast<double>(exp_fast(row[j] - mx));
      const double l = static_cast<double>(mx) + std::log(s);
      pl[i] = static_cast<T>(l);
      row_loss[static_cast<size_t>(i)] = l - static_cast<double>(row[tv[i]]);
    }
  });
  double total = 0;  // summed in row order: the same bits for every thread count
  for (double l : row_loss) total += l;
  const double loss = denom > 0 ? total / denom : 0.0;
  return {Tensor::full({}, loss, logits.dtype()), lse};
}

Tensor CpuBackend::cross_entropy_backward(const Tensor& dloss, const Tensor& logits,
                                          const Tensor& targets, const CrossEntropy& saved,
                                          double denom) {
  const int64_t N = logits.size(0), V = logits.size(1);
  if (denom <= 0) return Tensor::zeros({N, V}, logits.dtype());
  const int64_t* tv = targets.data<int64_t>();
  Tensor dx = Tensor::empty({N, V}, logits.dtype());
  const double gs = dloss.item() / denom;
  dispatch_float("cross_entropy", logits, [&](auto zero) {
    using T = decltype(zero);
    const T* px = logits.data<T>();
    const T* pl = saved.saved.data<T>();
    T* pd = dx.data<T>();
#pragma omp parallel for if (N > 4) schedule(static)
    for (int64_t i = 0; i < N; ++i) {
      const T* row = px + i * V;
      T* drow = pd + i * V;
      if (tv[i] == kIgnoredRow) {
        std::fill_n(drow, V, T(0));
        continue;
      }
      const T l = pl[i];
#pragma omp simd
      for (int64_t j = 0; j < V; ++j)
        drow[j] = static_cast<T>(gs * static_cast<double>(exp_fast(row[j] - l)));
      drow[tv[i]] -= static_cast<T>(gs);
    }
  });
  return dx;
}

}  // namespace minivlm::cpu
