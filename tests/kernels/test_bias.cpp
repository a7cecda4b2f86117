// Bias add and its column-sum backward, under every schedule of the emulator.
#include <vector>

#include "tests/kernels/kernel_test.h"

namespace minivlm::kernels::test {
namespace {

template <typename T>
class BiasKernels : public ::testing::Test {};
TYPED_TEST_SUITE(BiasKernels, StorageTypes);

TYPED_TEST(BiasKernels, ForwardAddsTheBiasToEveryRow) {
  using T = TypeParam;
  for (const RowCase& shape : row_cases()) {
    SCOPED_TRACE(row_case_trace(shape));
    const auto [N, C, bs] = shape;
    const std::size_t size = static_cast<std::size_t>(N) * C;
    const auto x = random_values<T>(size, 91, -2, 2);
    const auto b = random_values<T>(C, 92, -1, 1);
    std::vector<T> out;
    for_each_schedule([&](ScheduleBits& bits) {
      out.assign(size, poison<T>());
      k::bias_add_forward(out.data(), x.data(), b.data(), N, C, nullptr, bs);
      bits.check("out", out);
    });
    for (std::size_t i = 0; i < size; ++i) {
      ASSERT_EQ(to_double(out[i]), to_double(round_to<T>(to_double(x[i]) + to_double(b[i % C]))))
          << "out[" << i << "]";
    }
  }
}

TYPED_TEST(BiasKernels, BackwardSumsTheRows) {
  using T = TypeParam;
  std::vector<RowCase> cases = row_cases();
  // Rows beyond one chunk: chunk sums go through scratch and a second pass.
  cases.push_back({small_shapes() ? kColumnSumChunkRows + 9 : 3 * kColumnSumChunkRows + 9, 40, 0});
  for (const RowCase& shape : cases) {
    SCOPED_TRACE(row_case_trace(shape));
    const auto [N, C, unused] = shape;
    const std::size_t size = static_cast<std::size_t>(N) * C;
    const auto dout = random_values<T>(size, 93, -1, 1);
    std::vector<float> scratch(column_sum_scratch_floats(N, C));
    std::vector<T> dbias;
    for_each_schedule([&](ScheduleBits& bits) {
      dbias.assign(C, poison<T>());
      scratch.assign(scratch.size(), poison<float>());
      k::bias_add_backward(dbias.data(), scratch.data(), dout.data(), N, C, nullptr);
      bits.check("dbias", dbias);
    });
    std::vector<double> ref(C, 0.0);
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c) ref[c] += to_double(dout[static_cast<std::size_t>(n) * C + c]);
    expect_close("dbias", dbias, ref);
  }
}

}  // namespace
}  // namespace minivlm::kernels::test
