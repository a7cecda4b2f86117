// Element-wise arithmetic (binary, scale) and the sum over a middle dimension (sum_dim) against
// double-precision references, under every schedule of the emulator.
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "tests/kernels/kernel_test.h"

namespace minivlm::kernels::test {
namespace {

double apply(BinaryOp op, double x, double y) {
  switch (op) {
    case BinaryOp::add:
      return x + y;
    case BinaryOp::sub:
      return x - y;
    case BinaryOp::mul:
      return x * y;
  }
  return 0;
}

const char* op_name(BinaryOp op) {
  return op == BinaryOp::add ? "add" : op == BinaryOp::sub ? "sub" : "mul";
}

template <typename T>
class ElementwiseKernels : public ::testing::Test {};
TYPED_TEST_SUITE(ElementwiseKernels, StorageTypes);

TYPED_TEST(ElementwiseKernels, BinaryAddSubMul) {
  using T = TypeParam;
  for (const BinaryOp op : {BinaryOp::add, BinaryOp::sub, BinaryOp::mul}) {
    for (const ElementCase& c : element_cases()) {
      SCOPED_TRACE(std::string(op_name(op)) + ", " +
                   shape_trace({{"n", static_cast<long>(c.n)}, {"block", c.block}}));
      const auto a = random_values<T>(c.n, 11, -3, 3);
      const auto b = random_values<T>(c.n, 12, -3, 3);
      std::vector<T> out;
      for_each_schedule([&](ScheduleBits& bits) {
        out.assign(c.n, poison<T>());
        k::binary(out.data(), a.data(), b.data(), c.n, op, nullptr, c.block);
        bits.check("out", out);
      });
      std::vector<double> ref(c.n);
      for (std::size_t i = 0; i < c.n; ++i) ref[i] = apply(op, to_double(a[i]), to_double(b[i]));
      expect_close("out", out, ref);
    }
  }
}

// out may alias either input.
TYPED_TEST(ElementwiseKernels, BinaryInPlace) {
  using T = TypeParam;
  const std::size_t n = 300;
  const auto a = random_values<T>(n, 13, -3, 3);
  const auto b = random_values<T>(n, 14, -3, 3);
  std::vector<T> out(n), into_a = a, into_b = b;
  k::binary(out.data(), a.data(), b.data(), n, BinaryOp::sub, nullptr, 64);
  k::binary(into_a.data(), into_a.data(), b.data(), n, BinaryOp::sub, nullptr, 64);
  k::binary(into_b.data(), a.data(), into_b.data(), n, BinaryOp::sub, nullptr, 64);
  EXPECT_EQ(0, std::memcmp(out.data(), into_a.data(), n * sizeof(T)));
  EXPECT_EQ(0, std::memcmp(out.data(), into_b.data(), n * sizeof(T)));
}

TYPED_TEST(ElementwiseKernels, Scale) {
  using T = TypeParam;
  for (const float s : {-1.75f, 0.3f, 0.0f}) {
    for (const ElementCase& c : element_cases()) {
      SCOPED_TRACE("s = " + std::to_string(s) + ", " +
                   shape_trace({{"n", static_cast<long>(c.n)}, {"block", c.block}}));
      const auto a = random_values<T>(c.n, 15, -3, 3);
      std::vector<T> out;
      for_each_schedule([&](ScheduleBits& bits) {
        out.assign(c.n, poison<T>());
        k::scale(out.data(), a.data(), s, c.n, nullptr, c.block);
        bits.check("out", out);
      });
      std::vector<double> ref(c.n);
      for (std::size_t i = 0; i < c.n; ++i) ref[i] = to_double(a[i]) * static_cast<double>(s);
      expect_close("out", out, ref);
    }
  }
}

struct SumDimCase {
  long outer, n, inner;
  int block;
};

std::vector<SumDimCase> sum_dim_cases() {
  if (small_shapes()) return {{1, 1, 1, 32}, {3, 7, 1, 96}, {2, 65, 33, 32}, {2, 0, 5, 64}};
  return {{1, 1, 1, 32},      {3, 7, 1, 96},      {2, 65, 33, 32}, {5, 1, 7, 64},
          {1, 300, 130, 256}, {40, 9, 100, 1024}, {2, 0, 5, 64}};
}

// out [outer, inner] = Σ_k in [outer, k, inner], summed in double.
TYPED_TEST(ElementwiseKernels, SumDimSumsTheMiddleDimension) {
  using T = TypeParam;
  for (const SumDimCase& c : sum_dim_cases()) {
    SCOPED_TRACE(
        shape_trace({{"outer", c.outer}, {"n", c.n}, {"inner", c.inner}, {"block", c.block}}));
    const std::size_t outputs = static_cast<std::size_t>(c.outer * c.inner);
    const auto in = random_values<T>(static_cast<std::size_t>(c.outer * c.n * c.inner), 16, -1, 1);
    std::vector<T> out;
    for_each_schedule([&](ScheduleBits& bits) {
      out.assign(outputs, poison<T>());
      k::sum_dim(out.data(), in.data(), c.outer, c.n, c.inner, nullptr, c.block);
      bits.check("out", out);
    });
    std::vector<double> ref(outputs, 0.0);
    for (long o = 0; o < c.outer; ++o)
      for (long k = 0; k < c.n; ++k)
        for (long j = 0; j < c.inner; ++j)
          ref[o * c.inner + j] += to_double(in[(o * c.n + k) * c.inner + j]);
    // A sum can cancel to near zero: the tolerance is also relative to √n, the typical size of a
    // sum of n terms of unit size.
    expect_close("out", out, ref, tolerance<T>(), std::sqrt(static_cast<double>(c.n)));
  }
}

TEST(ElementwiseKernels, RejectsABlockSizeThatIsNotWholeWarps) {
  std::vector<float> x(64);
  EXPECT_THROW(k::binary(x.data(), x.data(), x.data(), x.size(), BinaryOp::add, nullptr, 48),
               std::invalid_argument);
  EXPECT_THROW(k::scale(x.data(), x.data(), 2.0f, x.size(), nullptr, 2048), std::invalid_argument);
  EXPECT_THROW(k::sum_dim(x.data(), x.data(), 1, 64, 1, nullptr, 0), std::invalid_argument);
}

}  // namespace
}  // namespace minivlm::kernels::test
