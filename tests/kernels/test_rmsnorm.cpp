// RMSNorm kernels (plain and fused with the residual add), forward and backward, against
// double-precision references, under every schedule of the emulator.
#include <cmath>
#include <stdexcept>
#include <vector>

#include "tests/kernels/kernel_test.h"

namespace minivlm::kernels::test {
namespace {

constexpr float kEps = 1e-5f;

struct RmsReference {
  std::vector<double> out, rstd;
};

RmsReference rmsnorm_reference(const std::vector<double>& x, const std::vector<double>& w, int N,
                               int C) {
  RmsReference ref{std::vector<double>(x.size()), std::vector<double>(N)};
  for (int n = 0; n < N; ++n) {
    double squares = 0;
    for (int c = 0; c < C; ++c) squares += x[n * C + c] * x[n * C + c];
    const double s = 1.0 / std::sqrt(squares / C + kEps);
    ref.rstd[n] = s;
    for (int c = 0; c < C; ++c) ref.out[n * C + c] = x[n * C + c] * s * w[c];
  }
  return ref;
}

struct RmsGradients {
  std::vector<double> dinp, dweight;
};

// dx = s·(g − x̂·mean(g·x̂)) (+ dresidual), dweight = Σ dout·x̂, with x̂ = x·s and g = dout·w.
RmsGradients rmsnorm_backward_reference(const std::vector<double>& dout,
                                        const std::vector<double>& x, const std::vector<double>& w,
                                        const std::vector<float>& rstd,
                                        const std::vector<double>* dresidual, int N, int C) {
  RmsGradients ref{std::vector<double>(x.size()), std::vector<double>(C, 0.0)};
  for (int n = 0; n < N; ++n) {
    const double s = rstd[n];
    double dot = 0;
    for (int c = 0; c < C; ++c) dot += dout[n * C + c] * w[c] * x[n * C + c] * s;
    dot /= C;
    for (int c = 0; c < C; ++c) {
      const std::size_t i = static_cast<std::size_t>(n) * C + c;
      ref.dinp[i] = s * (dout[i] * w[c] - x[i] * s * dot) + (dresidual ? (*dresidual)[i] : 0.0);
      ref.dweight[c] += dout[i] * x[i] * s;
    }
  }
  return ref;
}

std::vector<float> rstd_of(const std::vector<double>& x, int N, int C) {
  const RmsReference ref = rmsnorm_reference(x, std::vector<double>(C, 1.0), N, C);
  std::vector<float> rstd(N);
  for (int n = 0; n < N; ++n) rstd[n] = static_cast<float>(ref.rstd[n]);
  return rstd;
}

// The scale of the terms of dx = s·g − s·x̂·mean(g·x̂): over few columns they cancel almost
// exactly, and fp32 keeps only their scale's precision.
double gradient_term_scale(const std::vector<double>& dout, const std::vector<double>& w,
                           const std::vector<float>& rstd, int N, int C) {
  std::vector<double> terms(dout.size());
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) terms[n * C + c] = rstd[n] * dout[n * C + c] * w[c];
  return rms(terms);
}

template <typename T>
class RmsNormKernels : public ::testing::Test {};
TYPED_TEST_SUITE(RmsNormKernels, StorageTypes);

TYPED_TEST(RmsNormKernels, ForwardMatchesReference) {
  using T = TypeParam;
  for (const RowCase& shape : row_cases()) {
    SCOPED_TRACE(row_case_trace(shape));
    const auto [N, C, bs] = shape;
    const auto x = random_values<T>(static_cast<std::size_t>(N) * C, 1, -2, 2);
    const auto w = random_values<T>(C, 2, 0.5, 1.5);
    std::vector<T> out;
    std::vector<float> rstd;
    for_each_schedule([&](ScheduleBits& bits) {
      out.assign(x.size(), poison<T>());
      rstd.assign(N, poison<float>());
      k::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, kEps, nullptr, bs);
      bits.check("out", out);
      bits.check("rstd", rstd);
    });
    const RmsReference ref = rmsnorm_reference(to_double(x), to_double(w), N, C);
    expect_close("out", out, ref.out);
    expect_close("rstd", rstd, ref.rstd);
  }
}

TYPED_TEST(RmsNormKernels, FusedResidualForwardIsAddThenNorm) {
  using T = TypeParam;
  for (const RowCase& shape : row_cases()) {
    SCOPED_TRACE(row_case_trace(shape));
    const auto [N, C, bs] = shape;
    const std::size_t size = static_cast<std::size_t>(N) * C;
    const auto x = random_values<T>(size, 3, -2, 2);
    const auto r = random_values<T>(size, 4, -1, 1);
    const auto w = random_values<T>(C, 5, 0.5, 1.5);
    std::vector<T> residual, out;
    std::vector<float> rstd;
    for_each_schedule([&](ScheduleBits& bits) {
      residual.assign(size, poison<T>());
      out.assign(size, poison<T>());
      rstd.assign(N, poison<float>());
      k::fused_residual_rmsnorm_forward(residual.data(), out.data(), rstd.data(), x.data(),
                                        r.data(), w.data(), N, C, kEps, nullptr, bs);
      bits.check("residual", residual);
      bits.check("out", out);
      bits.check("rstd", rstd);
    });
    std::vector<double> sum(size);
    for (std::size_t i = 0; i < size; ++i) {
      sum[i] = to_double(round_to<T>(to_double(x[i]) + to_double(r[i])));
      ASSERT_EQ(to_double(residual[i]), sum[i]) << "residual[" << i << "]";
    }
    const RmsReference ref = rmsnorm_reference(sum, to_double(w), N, C);
    expect_close("out", out, ref.out);
    expect_close("rstd", rstd, ref.rstd);

    // The norm of the stored residual: exactly what the plain kernel gives for it.
    std::vector<T> plain(size, poison<T>());
    std::vector<float> plain_rstd(N, poison<float>());
    k::rmsnorm_forward(plain.data(), plain_rstd.data(), residual.data(), w.data(), N, C, kEps,
                       nullptr, bs);
    EXPECT_EQ(0, std::memcmp(plain.data(), out.data(), size * sizeof(T)));
    EXPECT_EQ(0, std::memcmp(plain_rstd.data(), rstd.data(), N * sizeof(float)));
  }
}

TYPED_TEST(RmsNormKernels, BackwardMatchesReference) {
  using T = TypeParam;
  for (const RowCase& shape : row_cases()) {
    SCOPED_TRACE(row_case_trace(shape));
    const auto [N, C, bs] = shape;
    const std::size_t size = static_cast<std::size_t>(N) * C;
    const auto x = random_values<T>(size, 6, -2, 2);
    const auto w = random_values<T>(C, 7, 0.5, 1.5);
    const auto dout = random_values<T>(size, 8, -1, 1);
    const std::vector<float> rstd = rstd_of(to_double(x), N, C);
    std::vector<float> scratch(rmsnorm_backward_scratch_floats(N, C));
    std::vector<T> dinp, dweight;
    for_each_schedule([&](ScheduleBits& bits) {
      dinp.assign(size, poison<T>());
      dweight.assign(C, poison<T>());
      scratch.assign(scratch.size(), poison<float>());
      k::rmsnorm_backward(dinp.data(), dweight.data(), scratch.data(), dout.data(), x.data(),
                          w.data(), rstd.data(), N, C, nullptr, bs);
      bits.check("dinp", dinp);
      bits.check("dweight", dweight);
    });
    const RmsGradients ref = rmsnorm_backward_reference(to_double(dout), to_double(x), to_double(w),
                                                        rstd, nullptr, N, C);
    expect_close("dinp", dinp, ref.dinp, tolerance<T>(),
                 gradient_term_scale(to_double(dout), to_double(w), rstd, N, C));
    expect_close("dweight", dweight, ref.dweight);
  }
}

TYPED_TEST(RmsNormKernels, FusedResidualBackwardAddsTheResidualGradient) {
  using T = TypeParam;
  // More rows than backward blocks: each block then sums several rows into its partial row.
  const int N = small_shapes() ? kNormBackwardBlocks + 5 : 2 * kNormBackwardBlocks + 3;
  for (int C : {7, 65}) {
    SCOPED_TRACE(shape_trace({{"N", N}, {"C", C}}));
    const std::size_t size = static_cast<std::size_t>(N) * C;
    const auto residual = random_values<T>(size, 9, -2, 2);
    const auto w = random_values<T>(C, 10, 0.5, 1.5);
    const auto dout = random_values<T>(size, 11, -1, 1);
    const auto dresidual = random_values<T>(size, 12, -1, 1);
    const std::vector<float> rstd = rstd_of(to_double(residual), N, C);
    std::vector<float> scratch(rmsnorm_backward_scratch_floats(N, C));
    std::vector<T> dinp, dweight;
    for_each_schedule([&](ScheduleBits& bits) {
      dinp.assign(size, poison<T>());
      dweight.assign(C, poison<T>());
      k::fused_residual_rmsnorm_backward(dinp.data(), dweight.data(), scratch.data(),
                                         dresidual.data(), dout.data(), residual.data(), w.data(),
                                         rstd.data(), N, C, nullptr, 32);
      bits.check("dinp", dinp);
      bits.check("dweight", dweight);
    });
    const std::vector<double> dres = to_double(dresidual);
    const RmsGradients ref = rmsnorm_backward_reference(to_double(dout), to_double(residual),
                                                        to_double(w), rstd, &dres, N, C);
    expect_close("dinp", dinp, ref.dinp);
    expect_close("dweight", dweight, ref.dweight);
  }
}

TEST(RmsNormKernels, RejectsPartialWarps) {
  std::vector<float> x(10, 1.0f), w(10, 1.0f), out(10);
  EXPECT_THROW(k::rmsnorm_forward(out.data(), static_cast<float*>(nullptr), x.data(), w.data(), 1,
                                  10, kEps, nullptr, 48),
               std::invalid_argument);
}

}  // namespace
}  // namespace minivlm::kernels::test
