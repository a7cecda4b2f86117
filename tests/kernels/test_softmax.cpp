// Row softmax, forward and backward, against double-precision references, under every schedule of
// the emulator.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "tests/kernels/kernel_test.h"

namespace minivlm::kernels::test {
namespace {

// y = exp(x − max x) / Σ exp(x − max x) per row of x [N, C].
std::vector<double> softmax_reference(const std::vector<double>& x, int N, int C) {
  std::vector<double> y(x.size());
  for (int n = 0; n < N; ++n) {
    const double* row = x.data() + static_cast<std::size_t>(n) * C;
    const double mx = *std::max_element(row, row + C);
    double sum = 0;
    for (int c = 0; c < C; ++c) sum += std::exp(row[c] - mx);
    for (int c = 0; c < C; ++c)
      y[static_cast<std::size_t>(n) * C + c] = std::exp(row[c] - mx) / sum;
  }
  return y;
}

template <typename T>
class SoftmaxKernels : public ::testing::Test {};
TYPED_TEST_SUITE(SoftmaxKernels, StorageTypes);

TYPED_TEST(SoftmaxKernels, ForwardMatchesReference) {
  using T = TypeParam;
  for (const RowCase& shape : row_cases()) {
    SCOPED_TRACE(row_case_trace(shape));
    const auto [N, C, bs] = shape;
    const std::size_t size = static_cast<std::size_t>(N) * C;
    auto x = random_values<T>(size, 21, -8, 8);
    // A row far from zero: exp without the max subtracted would overflow.
    if (N > 1)
      for (int c = 0; c < C; ++c) x[C + c] = round_to<T>(to_double(x[C + c]) + 1000);
    std::vector<T> out;
    for_each_schedule([&](ScheduleBits& bits) {
      out.assign(size, poison<T>());
      k::softmax_forward(out.data(), x.data(), N, C, nullptr, bs);
      bits.check("out", out);
    });
    expect_close("out", out, softmax_reference(to_double(x), N, C));
  }
}

// dx = y ∘ (g − rowsum(y ∘ g)) at a y that is itself a softmax (rounded to T).
TYPED_TEST(SoftmaxKernels, BackwardMatchesReference) {
  using T = TypeParam;
  for (const RowCase& shape : row_cases()) {
    SCOPED_TRACE(row_case_trace(shape));
    const auto [N, C, bs] = shape;
    const std::size_t size = static_cast<std::size_t>(N) * C;
    const std::vector<double> y_exact =
        softmax_reference(to_double(random_values<T>(size, 22, -4, 4)), N, C);
    std::vector<T> y(size);
    for (std::size_t i = 0; i < size; ++i) y[i] = round_to<T>(y_exact[i]);
    const auto dout = random_values<T>(size, 23, -1, 1);
    std::vector<T> dinp;
    for_each_schedule([&](ScheduleBits& bits) {
      dinp.assign(size, poison<T>());
      k::softmax_backward(dinp.data(), dout.data(), y.data(), N, C, nullptr, bs);
      bits.check("dinp", dinp);
    });
    std::vector<double> ref(size), terms(size);
    for (int n = 0; n < N; ++n) {
      const std::size_t row = static_cast<std::size_t>(n) * C;
      double dot = 0;
      for (int c = 0; c < C; ++c) dot += to_double(y[row + c]) * to_double(dout[row + c]);
      for (int c = 0; c < C; ++c) {
        ref[row + c] = to_double(y[row + c]) * (to_double(dout[row + c]) - dot);
        terms[row + c] = to_double(y[row + c]) * to_double(dout[row + c]);
      }
    }
    // g − rowsum(y ∘ g) cancels where one probability dominates: the scale is that of y ∘ g.
    expect_close("dinp", dinp, ref, tolerance<T>(), rms(terms));
  }
}

TEST(SoftmaxKernels, RejectsABlockSizeThatIsNotWholeWarps) {
  std::vector<float> x(64);
  EXPECT_THROW(k::softmax_forward(x.data(), x.data(), 2, 32, nullptr, 100), std::invalid_argument);
  EXPECT_THROW(k::softmax_backward(x.data(), x.data(), x.data(), 2, 32, nullptr, 0),
               std::invalid_argument);
}

}  // namespace
}  // namespace minivlm::kernels::test
