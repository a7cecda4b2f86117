#include <gtest/gtest.h>

#include <cmath>

#include "optim/adamw.h"

namespace minivlm {
namespace {

TEST(AdamW, MatchesTheUpdateRuleStepByStep) {
  Tensor p = Tensor::from_vector(std::vector<float>{0.5f, -1.0f, 2.0f}, {3});
  p.set_requires_grad(true);
  AdamW opt({{"p", p}}, AdamWConfig{0.9, 0.999, 1e-8, 0.1});
  // Reference in double, written from the AdamW paper's decoupled update.
  std::vector<double> ref = {0.5, -1.0, 2.0}, m(3, 0), v(3, 0);
  const std::vector<std::vector<float>> grads = {
      {0.1f, -0.2f, 0.3f}, {1.0f, 0.0f, -0.5f}, {-0.3f, 0.2f, 0.1f}};
  const double lr = 0.01;
  for (size_t t = 0; t < grads.size(); ++t) {
    p.set_grad(Tensor::from_vector(grads[t], {3}));
    opt.step(lr);
    for (int i = 0; i < 3; ++i) {
      ref[i] -= lr * 0.1 * ref[i];
      m[i] = 0.9 * m[i] + 0.1 * grads[t][i];
      v[i] = 0.999 * v[i] + 0.001 * grads[t][i] * grads[t][i];
      const double mh = m[i] / (1 - std::pow(0.9, t + 1)), vh = v[i] / (1 - std::pow(0.999, t + 1));
      ref[i] -= lr * mh / (std::sqrt(vh) + 1e-8);
    }
    const auto got = p.to_double_vector();
    for (int i = 0; i < 3; ++i)
      EXPECT_NEAR(got[i], ref[i], 1e-6) << "step " << t << " element " << i;
  }
  EXPECT_EQ(opt.steps(), 3);
}

TEST(AdamW, StateRoundTripContinuesIdentically) {
  auto make = [] {
    Tensor p = Tensor::from_vector(std::vector<float>{1.0f, 2.0f}, {2});
    p.set_requires_grad(true);
    return p;
  };
  Tensor a = make(), b = make();
  AdamW oa({{"w", a}}, {}), ob({{"w", b}}, {});
  a.set_grad(Tensor::from_vector(std::vector<float>{0.3f, -0.7f}, {2}));
  oa.step(0.1);
  std::map<std::string, Tensor> st;
  for (auto& [n, t] : oa.state_tensors()) st[n] = t.clone();
  b.copy_(a);
  ob.load_state(st, oa.steps());
  for (Tensor* t : {&a, &b}) t->set_grad(Tensor::from_vector(std::vector<float>{-0.1f, 0.4f}, {2}));
  oa.step(0.05);
  ob.step(0.05);
  EXPECT_EQ(a.to_float_vector(), b.to_float_vector());
  st.erase("w.exp_avg");
  EXPECT_THROW(ob.load_state(st, 1), Error);
}

TEST(LrSchedule, WarmupThenCosineToMinRatio) {
  EXPECT_DOUBLE_EQ(lr_at(0, 100, 10, 1.0, 0.1), 0.1);
  EXPECT_DOUBLE_EQ(lr_at(9, 100, 10, 1.0, 0.1), 1.0);
  EXPECT_NEAR(lr_at(10, 100, 10, 1.0, 0.1), 1.0, 1e-12);
  EXPECT_NEAR(lr_at(55, 100, 10, 1.0, 0.1), 0.55, 1e-12);  // halfway: (1 + 0.1) / 2
  EXPECT_NEAR(lr_at(100, 100, 10, 1.0, 0.1), 0.1, 1e-12);
  EXPECT_NEAR(lr_at(0, 10, 0, 2.0, 0.5), 2.0, 1e-12);
}

TEST(GradClip, GlobalNormAndTheFactorAdamWAppliesToEveryGradient) {
  Tensor a = Tensor::zeros({2}), b = Tensor::zeros({1});
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  a.set_grad(Tensor::from_vector(std::vector<float>{3.0f, 0.0f}, {2}));
  b.set_grad(Tensor::from_vector(std::vector<float>{4.0f}, {1}));
  const double n = grad_norm({{"a", a}, {"b", b}});
  EXPECT_NEAR(n, 5.0, 1e-12);
  const double f = clip_factor(n, 1.0);
  EXPECT_DOUBLE_EQ(f, 1.0 / (5.0 + 1e-6));
  EXPECT_DOUBLE_EQ(clip_factor(0.5, 1.0), 1.0);  // below the threshold: untouched
  EXPECT_DOUBLE_EQ(clip_factor(5.0, 0.0), 1.0);  // clipping off
  // A step with factor f equals a step on gradients already multiplied by f (in f32, as AdamW).
  Tensor p = Tensor::from_vector(std::vector<float>{0.5f, -1.0f, 2.0f}, {3});
  Tensor q = p.clone();
  p.set_requires_grad(true);
  q.set_requires_grad(true);
  const std::vector<float> g = {0.25f, -3.0f, 7.0f};
  std::vector<float> scaled;
  for (float x : g) scaled.push_back(x * static_cast<float>(f));
  p.set_grad(Tensor::from_vector(g, {3}));
  q.set_grad(Tensor::from_vector(scaled, {3}));
  AdamW op({{"p", p}}, {}), oq({{"q", q}}, {});
  op.step(1e-2, f);
  oq.step(1e-2);
  EXPECT_EQ(p.to_float_vector(), q.to_float_vector());
  EXPECT_NE(p.to_float_vector(), std::vector<float>({0.5f, -1.0f, 2.0f}));
}

}  // namespace
}  // namespace minivlm
