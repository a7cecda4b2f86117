// AdamW, the deterministic global gradient norm with clipping, and the single-block sum, against
// double-precision references, under every schedule of the emulator.
#include <cmath>
#include <vector>

#include "tests/kernels/kernel_test.h"

namespace minivlm::kernels::test {
namespace {

struct AdamState {
  std::vector<double> p, m, v;
};

// PyTorch's AdamW (the CPU optimizer's formula) in double.
void adamw_reference(AdamState& s, const std::vector<double>& g, double lr, double b1, double b2,
                     double eps, double wd, long t) {
  const double bc1 = 1 - std::pow(b1, static_cast<double>(t));
  const double bc2 = 1 - std::pow(b2, static_cast<double>(t));
  for (std::size_t i = 0; i < g.size(); ++i) {
    s.p[i] *= 1 - lr * wd;
    s.m[i] = b1 * s.m[i] + (1 - b1) * g[i];
    s.v[i] = b2 * s.v[i] + (1 - b2) * g[i] * g[i];
    s.p[i] -= lr * (s.m[i] / bc1) / (std::sqrt(s.v[i] / bc2) + eps);
  }
}

// Three steps of params T with fp32 master weights and gradients G, against the reference fed
// the same gradient values: master, m and v to fp32 accuracy, params the master's rounding.
template <typename T, typename G>
void check_adamw_with_master() {
  const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
  for (const ElementCase& c : element_cases()) {
    SCOPED_TRACE(shape_trace({{"n", static_cast<long>(c.n)}, {"block", c.block}}));
    const auto start = random_values<float>(c.n, 81, -1, 1);
    const float clip = 0.5f;
    std::vector<float> master, m, v;
    std::vector<T> params;
    AdamState ref{std::vector<double>(start.begin(), start.end()), std::vector<double>(c.n, 0.0),
                  std::vector<double>(c.n, 0.0)};
    for (long step = 1; step <= 3; ++step) {
      SCOPED_TRACE("step " + std::to_string(step));
      const auto grads = random_values<G>(c.n, 82 + step, -0.1, 0.1);
      const std::vector<float> m0 = step == 1 ? std::vector<float>(c.n, 0.0f) : m;
      const std::vector<float> v0 = step == 1 ? std::vector<float>(c.n, 0.0f) : v;
      const std::vector<float> master0 = step == 1 ? start : master;
      // Odd steps clip (grad_scale = 0.5), even ones do not (null).
      const float* scale = step % 2 == 1 ? &clip : nullptr;
      for_each_schedule([&](ScheduleBits& bits) {
        master = master0;
        m = m0;
        v = v0;
        params.assign(c.n, poison<T>());
        k::adamw_update(master.data(), params.data(), grads.data(), m.data(), v.data(), c.n, lr, b1,
                        b2, eps, wd, step, scale, nullptr, c.block);
        bits.check("master", master);
        bits.check("params", params);
        bits.check("m", m);
        bits.check("v", v);
      });
      std::vector<double> g = to_double(grads);
      if (scale != nullptr)
        for (double& x : g) x *= clip;
      adamw_reference(ref, g, lr, b1, b2, eps, wd, step);
      expect_close("master", master, ref.p, tolerance<float>());
      expect_close("m", m, ref.m, tolerance<float>());
      expect_close("v", v, ref.v, tolerance<float>());
      for (std::size_t i = 0; i < c.n; ++i)
        ASSERT_EQ(to_double(params[i]), to_double(round_to<T>(master[i]))) << "params[" << i << "]";
    }
  }
}

template <typename T>
class OptimizerKernels : public ::testing::Test {};
TYPED_TEST_SUITE(OptimizerKernels, StorageTypes);

TYPED_TEST(OptimizerKernels, AdamwWithMasterWeightsMatchesReference) {
  check_adamw_with_master<TypeParam, TypeParam>();
}

// bf16 parameters with the f32 gradients training accumulates for them: the gradients enter the
// moments unrounded (m and v to fp32 accuracy of the f32 values; a bf16 rounding of the gradients
// would put m 2^-9 off, far beyond that).
TEST(OptimizerKernels, AdamwOfBf16ParamsWithFloatGradientsMatchesReference) {
  check_adamw_with_master<bf16, float>();
}

TEST(OptimizerKernels, AdamwWithoutMasterUpdatesFloatParamsInPlace) {
  const std::size_t n = 300;
  const auto start = random_values<float>(n, 85, -1, 1);
  const auto grads = random_values<float>(n, 86, -0.1f, 0.1f);
  std::vector<float> params = start, m(n, 0.0f), v(n, 0.0f);
  k::adamw_update(static_cast<float*>(nullptr), params.data(), grads.data(), m.data(), v.data(), n,
                  1e-2, 0.9, 0.999, 1e-8, 0.1, 1, nullptr, nullptr, 64);
  AdamState ref{std::vector<double>(start.begin(), start.end()), std::vector<double>(n, 0.0),
                std::vector<double>(n, 0.0)};
  adamw_reference(ref, to_double(grads), 1e-2, 0.9, 0.999, 1e-8, 0.1, 1);
  expect_close("params", params, ref.p);
}

TYPED_TEST(OptimizerKernels, GlobalNormOverSeveralTensorsAndClipping) {
  using T = TypeParam;
  // The largest tensor needs more than kGlobalNormMaxBlocks blocks of 32 threads: each thread
  // then sums several strided elements.
  const std::vector<std::size_t> sizes = small_shapes()
                                             ? std::vector<std::size_t>{1, 65, 3000}
                                             : std::vector<std::size_t>{1, 7, 65, 4099, 70000};
  for (int bs : {32, 512}) {
    SCOPED_TRACE(shape_trace({{"block", bs}}));
    std::vector<std::vector<T>> grads;
    int slots = 0;
    double squares = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      grads.push_back(random_values<T>(sizes[i], 87 + i, -1, 1));
      slots += global_norm_partial_count(sizes[i], bs);
      for (const T& g : grads.back()) squares += to_double(g) * to_double(g);
    }
    const double norm = std::sqrt(squares);
    const float max_norm = static_cast<float>(norm / 3);
    std::vector<float> partials, out;
    std::vector<std::vector<T>> clipped;
    for_each_schedule([&](ScheduleBits& bits) {
      partials.assign(slots, poison<float>());
      out.assign(2, poison<float>());
      float* next = partials.data();
      for (std::size_t i = 0; i < grads.size(); ++i) {
        const int written =
            k::global_norm_partials(next, grads[i].data(), grads[i].size(), nullptr, bs);
        ASSERT_EQ(written, global_norm_partial_count(grads[i].size(), bs));
        next += written;
      }
      k::global_norm_finish(out.data(), partials.data(), slots, max_norm, nullptr, 96);
      clipped = grads;
      for (auto& g : clipped) k::scale_inplace(g.data(), g.size(), &out[1], nullptr, bs);
      bits.check("partials", partials);
      bits.check("norm and factor", out);
      for (const auto& g : clipped) bits.check("clipped", g);
    });
    EXPECT_NEAR(out[0], norm, tolerance<float>() * norm);
    const double factor = max_norm / (norm + 1e-6);
    EXPECT_NEAR(out[1], factor, tolerance<float>() * factor);
    for (std::size_t i = 0; i < grads.size(); ++i) {
      std::vector<double> want = to_double(grads[i]);
      for (double& x : want) x *= out[1];
      expect_close("clipped", clipped[i], want);
    }
    // Within the limit, or without one, the factor is exactly 1.
    for (const float limit : {static_cast<float>(2 * norm), 0.0f}) {
      std::vector<float> unclipped(2, poison<float>());
      k::global_norm_finish(unclipped.data(), partials.data(), slots, limit, nullptr, 1024);
      EXPECT_NEAR(unclipped[0], norm, tolerance<float>() * norm);
      EXPECT_EQ(unclipped[1], 1.0f) << "max_norm " << limit;
    }
  }
}

TEST(OptimizerKernels, ReduceSumOfLosses) {
  for (int n : {0, 1, 33, 5000}) {
    const auto losses = random_values<float>(n, 90, 0, 10);
    double want = 0;
    for (float x : losses) want += x;
    std::vector<float> out;
    for_each_schedule([&](ScheduleBits& bits) {
      out.assign(1, poison<float>());
      k::reduce_sum(out.data(), losses.data(), n, nullptr, 256);
      bits.check("sum", out);
    });
    EXPECT_NEAR(out[0], want, tolerance<float>() * (want + 1)) << "n = " << n;
  }
}

}  // namespace
}  // namespace minivlm::kernels::test
