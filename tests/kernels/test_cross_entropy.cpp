// The fused masked softmax cross-entropy kernel: per-row losses and in-place gradients against a
// double-precision reference, under every schedule of the emulator.
#include <cmath>
#include <random>
#include <vector>

#include "tests/kernels/kernel_test.h"

namespace minivlm::kernels::test {
namespace {

// Targets spread over the vocabulary; every third row (from the second) is not supervised.
std::vector<int> make_targets(int N, int V, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> dist(0, V - 1);
  std::vector<int> targets(N);
  for (int n = 0; n < N; ++n) targets[n] = n % 3 == 1 ? kIgnoreIndex : dist(rng);
  return targets;
}

template <typename T>
class CrossEntropyKernel : public ::testing::Test {};
TYPED_TEST_SUITE(CrossEntropyKernel, StorageTypes);

TYPED_TEST(CrossEntropyKernel, LossesAndGradientsMatchReference) {
  using T = TypeParam;
  std::vector<RowCase> cases = row_cases();
  cases.push_back({3, small_shapes() ? 700 : 6400, 512});  // the MiniMind vocabulary
  for (const RowCase& shape : cases) {
    SCOPED_TRACE(row_case_trace(shape));
    const auto [N, V, bs] = shape;
    const std::size_t size = static_cast<std::size_t>(N) * V;
    // Logits of a trained model's scale, and one row shifted up by 100, where exp overflows fp32
    // unless the row's max is subtracted first.
    std::vector<T> logits = random_values<T>(size, 71, -8, 8);
    for (int v = 0; v < V; ++v) logits[v] = round_to<T>(to_double(logits[v]) + 100.0);
    const std::vector<int> targets = make_targets(N, V, 72);
    const float scale = 1.0f / 37.0f;
    std::vector<T> grad;
    std::vector<float> losses;
    for_each_schedule([&](ScheduleBits& bits) {
      grad = logits;
      losses.assign(N, poison<float>());
      k::cross_entropy_forward_backward(losses.data(), grad.data(), targets.data(), N, V, scale,
                                        nullptr, bs);
      bits.check("losses", losses);
      bits.check("dlogits", grad);
    });
    const std::vector<double> all = to_double(logits);
    std::vector<double> ref_loss(N, 0.0), ref_grad(size, 0.0), row_scale(N, 0.0);
    for (int n = 0; n < N; ++n) {
      if (targets[n] == kIgnoreIndex) continue;
      const std::vector<double> row(all.begin() + static_cast<long>(n) * V,
                                    all.begin() + static_cast<long>(n + 1) * V);
      double mx = row[0], sum = 0;
      for (double x : row) {
        mx = std::max(mx, x);
        row_scale[n] = std::max(row_scale[n], std::abs(x));
      }
      for (double x : row) sum += std::exp(x - mx);
      const double lse = mx + std::log(sum);
      ref_loss[n] = lse - row[targets[n]];
      for (int v = 0; v < V; ++v) {
        ref_grad[static_cast<std::size_t>(n) * V + v] =
            (std::exp(row[v] - lse) - (v == targets[n] ? 1.0 : 0.0)) * scale;
      }
    }
    // The loss is a difference of logits: fp32 keeps it to the precision of their magnitude.
    for (int n = 0; n < N; ++n) {
      EXPECT_NEAR(losses[n], ref_loss[n], tolerance<float>() * (ref_loss[n] + row_scale[n]))
          << "losses[" << n << "]";
    }
    expect_close("dlogits", grad, ref_grad, tolerance<T>(), scale / V);
    for (int n = 0; n < N; ++n) {
      if (targets[n] != kIgnoreIndex) continue;
      EXPECT_EQ(losses[n], 0.0f) << "ignored row " << n;
      for (int v = 0; v < V; ++v)
        ASSERT_EQ(to_double(grad[static_cast<std::size_t>(n) * V + v]), 0.0) << "ignored row " << n;
    }
  }
}

// Each gradient row of a supervised position sums to zero (softmax sums to one) and its target
// entry is the only negative one.
TEST(CrossEntropyKernel, GradientRowsSumToZero) {
  const int N = 4, V = 1000;
  std::vector<float> logits = random_values<float>(static_cast<std::size_t>(N) * V, 73, -3, 3);
  const std::vector<int> targets{5, 999, 0, 512};
  std::vector<float> losses(N);
  k::cross_entropy_forward_backward(losses.data(), logits.data(), targets.data(), N, V, 1.0f,
                                    nullptr, 256);
  for (int n = 0; n < N; ++n) {
    double sum = 0;
    for (int v = 0; v < V; ++v) {
      const float g = logits[static_cast<std::size_t>(n) * V + v];
      sum += g;
      EXPECT_EQ(g < 0, v == targets[n]) << "row " << n << ", column " << v;
    }
    EXPECT_NEAR(sum, 0.0, 1e-5) << "row " << n;
    EXPECT_GT(losses[n], 0.0f);
  }
}

}  // namespace
}  // namespace minivlm::kernels::test
