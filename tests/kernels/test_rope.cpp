// RoPE kernels (half-split, SPEC §1.2), forward and backward, against a double-precision
// reference, under every schedule of the emulator.
#include <cmath>
#include <vector>

#include "tests/kernels/kernel_test.h"

namespace minivlm::kernels::test {
namespace {

struct RopeCase {
  int B, T, heads, head_dim, start_pos, block;
};

std::vector<RopeCase> rope_cases() {
  if (small_shapes()) return {{1, 1, 1, 2, 0, 32}, {2, 7, 3, 64, 5, 96}, {1, 3, 2, 96, 30000, 32}};
  return {{1, 1, 1, 2, 0, 32},
          {2, 7, 3, 64, 0, 96},
          {1, 5, 2, 96, 30000, 32},
          {2, 65, 2, 128, 17, 256},
          {1, 3, 8, 64, 32760, 1024}};
}

std::string rope_trace(const RopeCase& c) {
  return shape_trace({{"B", c.B},
                      {"T", c.T},
                      {"heads", c.heads},
                      {"head_dim", c.head_dim},
                      {"start_pos", c.start_pos},
                      {"block", c.block}});
}

// The rotation by sign·angle, as the CPU back-end computes it (SPEC §1.2).
std::vector<double> rope_reference(const std::vector<double>& x, const RopeCase& c, double theta,
                                   double sign) {
  std::vector<double> y(x.size());
  const int half = c.head_dim / 2;
  for (int b = 0; b < c.B; ++b) {
    for (int t = 0; t < c.T; ++t) {
      const double pos = c.start_pos + t;
      for (int h = 0; h < c.heads; ++h) {
        const std::size_t base =
            ((static_cast<std::size_t>(b) * c.T + t) * c.heads + h) * c.head_dim;
        for (int i = 0; i < half; ++i) {
          const double angle = pos * std::pow(theta, -2.0 * i / c.head_dim);
          const double cs = std::cos(angle), sn = sign * std::sin(angle);
          const double lo = x[base + i], hi = x[base + i + half];
          y[base + i] = lo * cs - hi * sn;
          y[base + i + half] = hi * cs + lo * sn;
        }
      }
    }
  }
  return y;
}

template <typename T>
class RopeKernels : public ::testing::Test {};
TYPED_TEST_SUITE(RopeKernels, StorageTypes);

TYPED_TEST(RopeKernels, ForwardAndBackwardMatchReference) {
  using T = TypeParam;
  const double theta = 1e6;
  for (const RopeCase& c : rope_cases()) {
    SCOPED_TRACE(rope_trace(c));
    const std::size_t size = static_cast<std::size_t>(c.B) * c.T * c.heads * c.head_dim;
    const auto x = random_values<T>(size, 31, -2, 2);
    std::vector<T> out, back;
    for_each_schedule([&](ScheduleBits& bits) {
      out.assign(size, poison<T>());
      back.assign(size, poison<T>());
      k::rope_forward(out.data(), x.data(), c.B, c.T, c.heads, c.head_dim, theta, c.start_pos,
                      nullptr, c.block);
      k::rope_backward(back.data(), x.data(), c.B, c.T, c.heads, c.head_dim, theta, c.start_pos,
                       nullptr, c.block);
      bits.check("out", out);
      bits.check("dinp", back);
    });
    expect_close("out", out, rope_reference(to_double(x), c, theta, 1.0));
    expect_close("dinp", back, rope_reference(to_double(x), c, theta, -1.0));
  }
}

TYPED_TEST(RopeKernels, InPlaceEqualsOutOfPlace) {
  using T = TypeParam;
  const RopeCase c{2, 9, 3, 64, 100, 64};
  const std::size_t size = static_cast<std::size_t>(c.B) * c.T * c.heads * c.head_dim;
  const auto x = random_values<T>(size, 32, -2, 2);
  std::vector<T> out(size), inplace = x;
  k::rope_forward(out.data(), x.data(), c.B, c.T, c.heads, c.head_dim, 1e4, c.start_pos, nullptr,
                  c.block);
  k::rope_forward(inplace.data(), inplace.data(), c.B, c.T, c.heads, c.head_dim, 1e4, c.start_pos,
                  nullptr, c.block);
  EXPECT_EQ(0, std::memcmp(out.data(), inplace.data(), size * sizeof(T)));
}

TEST(RopeKernels, RejectsOddHeadDim) {
  std::vector<float> x(6);
  EXPECT_THROW(k::rope_forward(x.data(), x.data(), 1, 1, 2, 3, 1e4, 0, nullptr, 32),
               std::invalid_argument);
}

}  // namespace
}  // namespace minivlm::kernels::test
