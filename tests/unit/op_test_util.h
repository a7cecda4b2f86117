// Helpers for op tests: random tensors, closeness checks, and a central-difference gradient check.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "autograd/node.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "ops/ops.h"

namespace minivlm::testing {

inline Tensor randn(Rng& rng, const Shape& shape, DType dtype = DType::f64, double std = 1.0) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (double& x : v) x = rng.normal(0.0, std);
  return Tensor::from_vector(v, shape, dtype);
}

// max |a − b| / (atol + rtol·|b|) ≤ 1 for every element; reports the worst index otherwise.
inline ::testing::AssertionResult all_close(const std::vector<double>& a,
                                            const std::vector<double>& b, double rtol,
                                            double atol) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << "sizes differ: " << a.size() << " vs " << b.size();
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(std::abs(a[i] - b[i]) <= atol + rtol * std::abs(b[i])))
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << a[i] << ", expected " << b[i];
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult all_close(const Tensor& a, const std::vector<double>& b,
                                            double rtol, double atol) {
  return all_close(a.to_double_vector(), b, rtol, atol);
}

// Step and tolerances of a central-difference check: |analytic − numeric| ≤ atol + rtol·|numeric|.
struct Gradcheck {
  double h = 1e-6, rtol = 1e-5, atol = 1e-7;
};

// Checks the analytic gradient of every floating input against central differences of
// L(inputs) = Σ f(inputs) ∘ w for a fixed random w. Floating inputs must be f64; integer inputs
// (indices) are passed through unperturbed.
inline void gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                      std::vector<Tensor> inputs, const Gradcheck& tol = {}, uint64_t seed = 7) {
  Rng rng(seed);
  for (Tensor& t : inputs) {
    if (!is_floating(t.dtype())) continue;
    ASSERT_EQ(t.dtype(), DType::f64) << "gradcheck runs in f64";
    t = t.detach().clone();
    t.set_requires_grad(true);
  }
  Tensor y = f(inputs);
  const Tensor w = randn(rng, y.shape());
  auto loss_of = [&](const std::vector<Tensor>& in) {
    NoGradGuard ng;
    const std::vector<double> yv = f(in).to_double_vector(), wv = w.to_double_vector();
    double s = 0;
    for (size_t i = 0; i < yv.size(); ++i) s += yv[i] * wv[i];
    return s;
  };
  ops::sum(ops::mul(y, w)).backward();
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor x = inputs[k];
    if (!x.requires_grad()) continue;
    ASSERT_TRUE(x.grad().defined()) << "input " << k << " received no gradient";
    const std::vector<double> analytic = x.grad().to_double_vector();
    double* p = x.data<double>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double orig = p[i];
      p[i] = orig + tol.h;
      const double up = loss_of(inputs);
      p[i] = orig - tol.h;
      const double down = loss_of(inputs);
      p[i] = orig;
      const double numeric = (up - down) / (2 * tol.h);
      ASSERT_NEAR(analytic[i], numeric, tol.atol + tol.rtol * std::abs(numeric))
          << "input " << k << " element " << i;
    }
  }
}

}  // namespace minivlm::testing
