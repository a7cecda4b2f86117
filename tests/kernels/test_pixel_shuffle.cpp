// Pixel shuffle kernels (SPEC §1.4), forward and backward, under every schedule of the emulator.
#include <vector>

#include "tests/kernels/kernel_test.h"

namespace minivlm::kernels::test {
namespace {

struct ShuffleCase {
  int B, G, D, r, block;
};

std::vector<ShuffleCase> shuffle_cases() {
  if (small_shapes()) return {{1, 1, 1, 1, 32}, {2, 4, 3, 2, 96}, {1, 6, 5, 3, 32}};
  return {{1, 1, 1, 1, 32},   {2, 4, 3, 2, 96},     {1, 6, 5, 3, 32},
          {2, 14, 7, 2, 256}, {1, 14, 65, 7, 1024}, {3, 5, 2, 1, 64}};
}

// The permutation as the CPU back-end writes it: in viewed as [B, Gr, r, Gr, r, D]
// (h2, dr, w2, dc, d), out as [B, Gr, Gr, r, r, D] (h2, w2, dr, dc, d).
template <typename T>
std::vector<T> shuffle_reference(const std::vector<T>& in, const ShuffleCase& c) {
  const int Gr = c.G / c.r;
  std::vector<T> out(in.size());
  std::size_t o = 0;
  for (int b = 0; b < c.B; ++b)
    for (int h2 = 0; h2 < Gr; ++h2)
      for (int w2 = 0; w2 < Gr; ++w2)
        for (int dr = 0; dr < c.r; ++dr)
          for (int dc = 0; dc < c.r; ++dc)
            for (int d = 0; d < c.D; ++d)
              out[o++] =
                  in[((static_cast<std::size_t>(b) * c.G + h2 * c.r + dr) * c.G + w2 * c.r + dc) *
                         c.D +
                     d];
  return out;
}

template <typename T>
class PixelShuffleKernels : public ::testing::Test {};
TYPED_TEST_SUITE(PixelShuffleKernels, StorageTypes);

TYPED_TEST(PixelShuffleKernels, ForwardAndBackwardAreTheSmolVlmPermutation) {
  using T = TypeParam;
  for (const ShuffleCase& c : shuffle_cases()) {
    SCOPED_TRACE(shape_trace({{"B", c.B}, {"G", c.G}, {"D", c.D}, {"r", c.r}, {"block", c.block}}));
    const std::size_t n = static_cast<std::size_t>(c.B) * c.G * c.G * c.D;
    const auto in = random_values<T>(n, 61, -1, 1);
    const std::vector<T> shuffled = shuffle_reference(in, c);
    std::vector<T> out, back;
    for_each_schedule([&](ScheduleBits& bits) {
      out.assign(n, poison<T>());
      back.assign(n, poison<T>());
      k::pixel_shuffle_forward(out.data(), in.data(), c.B, c.G, c.D, c.r, nullptr, c.block);
      k::pixel_shuffle_backward(back.data(), shuffled.data(), c.B, c.G, c.D, c.r, nullptr, c.block);
      bits.check("out", out);
      bits.check("dinp", back);
    });
    EXPECT_EQ(0, std::memcmp(out.data(), shuffled.data(), n * sizeof(T)));
    EXPECT_EQ(0, std::memcmp(back.data(), in.data(), n * sizeof(T)));
  }
}

// A 4×4 grid of one channel numbered row by row, r = 2: each output token is one 2×2 patch read
// row by row (not torch.nn.PixelUnshuffle's channel-major order).
TEST(PixelShuffleKernels, GroupsPatchesRowByRow) {
  std::vector<float> in(16);
  for (int s = 0; s < 16; ++s) in[s] = static_cast<float>(s);
  std::vector<float> out(16);
  k::pixel_shuffle_forward(out.data(), in.data(), 1, 4, 1, 2, nullptr, 32);
  EXPECT_EQ(out, (std::vector<float>{0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15}));
}

TEST(PixelShuffleKernels, RejectsAGridTheFactorDoesNotDivide) {
  std::vector<float> x(25);
  EXPECT_THROW(k::pixel_shuffle_forward(x.data(), x.data(), 1, 5, 1, 2, nullptr, 32),
               std::invalid_argument);
}

}  // namespace
}  // namespace minivlm::kernels::test
