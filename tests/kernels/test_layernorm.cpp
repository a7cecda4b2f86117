// LayerNorm kernels, forward and backward, against double-precision references, under every
// schedule of the emulator.
#include <cmath>
#include <vector>

#include "tests/kernels/kernel_test.h"

namespace minivlm::kernels::test {
namespace {

constexpr float kEps = 1e-5f;

struct LayerNormStats {
  std::vector<double> mean, rstd;
};

LayerNormStats layernorm_stats(const std::vector<double>& x, int N, int C) {
  LayerNormStats st{std::vector<double>(N), std::vector<double>(N)};
  for (int n = 0; n < N; ++n) {
    double sum = 0, squares = 0;
    for (int c = 0; c < C; ++c) sum += x[n * C + c];
    const double m = sum / C;
    for (int c = 0; c < C; ++c) squares += (x[n * C + c] - m) * (x[n * C + c] - m);
    st.mean[n] = m;
    st.rstd[n] = 1.0 / std::sqrt(squares / C + kEps);
  }
  return st;
}

template <typename T>
class LayerNormKernels : public ::testing::Test {};
TYPED_TEST_SUITE(LayerNormKernels, StorageTypes);

TYPED_TEST(LayerNormKernels, ForwardMatchesReference) {
  using T = TypeParam;
  for (const RowCase& shape : row_cases()) {
    SCOPED_TRACE(row_case_trace(shape));
    const auto [N, C, bs] = shape;
    const std::size_t size = static_cast<std::size_t>(N) * C;
    // A large common offset: the two-pass variance keeps its precision.
    const auto x = random_values<T>(size, 21, 30, 34);
    const auto w = random_values<T>(C, 22, 0.5, 1.5);
    const auto b = random_values<T>(C, 23, -0.5, 0.5);
    std::vector<T> out;
    std::vector<float> mean, rstd;
    for_each_schedule([&](ScheduleBits& bits) {
      out.assign(size, poison<T>());
      mean.assign(N, poison<float>());
      rstd.assign(N, poison<float>());
      k::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C,
                           kEps, nullptr, bs);
      bits.check("out", out);
      bits.check("mean", mean);
      bits.check("rstd", rstd);
    });
    const std::vector<double> xd = to_double(x), wd = to_double(w), bd = to_double(b);
    const LayerNormStats st = layernorm_stats(xd, N, C);
    std::vector<double> ref(size);
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c)
        ref[n * C + c] = (xd[n * C + c] - st.mean[n]) * st.rstd[n] * wd[c] + bd[c];
    expect_close("out", out, ref);
    expect_close("mean", mean, st.mean);
    expect_close("rstd", rstd, st.rstd);
  }
}

TYPED_TEST(LayerNormKernels, BackwardMatchesReference) {
  using T = TypeParam;
  std::vector<RowCase> cases = row_cases();
  cases.push_back({small_shapes() ? kNormBackwardBlocks + 5 : 2 * kNormBackwardBlocks + 3, 9, 32});
  for (const RowCase& shape : cases) {
    SCOPED_TRACE(row_case_trace(shape));
    const auto [N, C, bs] = shape;
    const std::size_t size = static_cast<std::size_t>(N) * C;
    const auto x = random_values<T>(size, 24, -2, 2);
    const auto w = random_values<T>(C, 25, 0.5, 1.5);
    const auto dout = random_values<T>(size, 26, -1, 1);
    const std::vector<double> xd = to_double(x), wd = to_double(w), dd = to_double(dout);
    const LayerNormStats st = layernorm_stats(xd, N, C);
    std::vector<float> mean(N), rstd(N);
    for (int n = 0; n < N; ++n) {
      mean[n] = static_cast<float>(st.mean[n]);
      rstd[n] = static_cast<float>(st.rstd[n]);
    }
    std::vector<float> scratch(layernorm_backward_scratch_floats(N, C));
    std::vector<T> dinp, dweight, dbias;
    for_each_schedule([&](ScheduleBits& bits) {
      dinp.assign(size, poison<T>());
      dweight.assign(C, poison<T>());
      dbias.assign(C, poison<T>());
      k::layernorm_backward(dinp.data(), dweight.data(), dbias.data(), scratch.data(), dout.data(),
                            x.data(), w.data(), mean.data(), rstd.data(), N, C, nullptr, bs);
      bits.check("dinp", dinp);
      bits.check("dweight", dweight);
      bits.check("dbias", dbias);
    });
    std::vector<double> ref_dinp(size), ref_dw(C, 0.0), ref_db(C, 0.0), terms(size);
    for (int n = 0; n < N; ++n) {
      const double m = mean[n], s = rstd[n];
      double g_sum = 0, g_dot = 0;
      for (int c = 0; c < C; ++c) {
        const double g = dd[n * C + c] * wd[c];
        g_sum += g;
        g_dot += g * (xd[n * C + c] - m) * s;
      }
      for (int c = 0; c < C; ++c) {
        const std::size_t i = static_cast<std::size_t>(n) * C + c;
        const double xhat = (xd[i] - m) * s, g = dd[i] * wd[c];
        ref_dinp[i] = s * (g - g_sum / C - xhat * g_dot / C);
        terms[i] = s * g;
        ref_dw[c] += dd[i] * xhat;
        ref_db[c] += dd[i];
      }
    }
    expect_close("dinp", dinp, ref_dinp, tolerance<T>(), rms(terms));
    expect_close("dweight", dweight, ref_dw);
    expect_close("dbias", dbias, ref_db);
  }
}

}  // namespace
}  // namespace minivlm::kernels::test
