// Embedding kernels: the gather forward and the deterministic scatter-add backward, under every
// schedule of the emulator.
#include <cstring>
#include <random>
#include <vector>

#include "tests/kernels/kernel_test.h"

namespace minivlm::kernels::test {
namespace {

struct EmbeddingCase {
  int N, V, C, block;
};

std::vector<EmbeddingCase> embedding_cases() {
  if (small_shapes()) return {{1, 1, 1, 32}, {7, 3, 7, 96}, {70, 37, 65, 32}};
  return {{1, 1, 1, 32},       {7, 3, 7, 96},       {65, 37, 65, 32},
          {130, 20, 130, 256}, {300, 50, 33, 1024}, {2100, 5, 40, 64}};
}

std::string embedding_trace(const EmbeddingCase& c) {
  return shape_trace({{"N", c.N}, {"V", c.V}, {"C", c.C}, {"block", c.block}});
}

// Ids with many repeats (V is small against N), so that rows collect several positions.
std::vector<int> random_ids(int N, int V, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> dist(0, V - 1);
  std::vector<int> ids(N);
  for (int& id : ids) id = dist(rng);
  return ids;
}

template <typename T>
class EmbeddingKernels : public ::testing::Test {};
TYPED_TEST_SUITE(EmbeddingKernels, StorageTypes);

TYPED_TEST(EmbeddingKernels, ForwardGathersRows) {
  using T = TypeParam;
  for (const EmbeddingCase& c : embedding_cases()) {
    SCOPED_TRACE(embedding_trace(c));
    std::vector<int> ids = random_ids(c.N, c.V, 51);
    if (c.N >= 3) {
      ids[1] = -1;   // outside the table: a zero row
      ids[2] = c.V;  // likewise
    }
    const auto weight = random_values<T>(static_cast<std::size_t>(c.V) * c.C, 52, -1, 1);
    std::vector<T> out;
    for_each_schedule([&](ScheduleBits& bits) {
      out.assign(static_cast<std::size_t>(c.N) * c.C, poison<T>());
      k::embedding_forward(out.data(), ids.data(), weight.data(), c.N, c.V, c.C, nullptr, c.block);
      bits.check("out", out);
    });
    for (int i = 0; i < c.N; ++i) {
      for (int col = 0; col < c.C; ++col) {
        const double want =
            ids[i] >= 0 && ids[i] < c.V ? to_double(weight[ids[i] * c.C + col]) : 0.0;
        ASSERT_EQ(to_double(out[i * c.C + col]), want) << "out[" << i << "][" << col << "]";
      }
    }
  }
}

TYPED_TEST(EmbeddingKernels, BackwardSumsInPositionOrder) {
  using T = TypeParam;
  for (const EmbeddingCase& c : embedding_cases()) {
    SCOPED_TRACE(embedding_trace(c));
    const std::vector<int> ids = random_ids(c.N, c.V, 53);
    const auto dout = random_values<T>(static_cast<std::size_t>(c.N) * c.C, 54, -1, 1);
    std::vector<T> dweight;
    for_each_schedule([&](ScheduleBits& bits) {
      dweight.assign(static_cast<std::size_t>(c.V) * c.C, poison<T>());
      k::embedding_backward(dweight.data(), dout.data(), ids.data(), c.N, c.V, c.C, nullptr,
                            c.block);
      bits.check("dweight", dweight);
    });
    // The fp32 sum in increasing position order, rounded once: exactly the kernel's result.
    std::vector<float> sums(dweight.size(), 0.0f);
    std::vector<double> exact(dweight.size(), 0.0);
    for (int i = 0; i < c.N; ++i) {
      for (int col = 0; col < c.C; ++col) {
        sums[ids[i] * c.C + col] += static_cast<float>(to_double(dout[i * c.C + col]));
        exact[ids[i] * c.C + col] += to_double(dout[i * c.C + col]);
      }
    }
    for (std::size_t j = 0; j < dweight.size(); ++j) {
      ASSERT_EQ(to_double(dweight[j]), to_double(round_to<T>(sums[j]))) << "dweight[" << j << "]";
    }
    expect_close("dweight", dweight, exact);
  }
}

TEST(EmbeddingKernels, BackwardIgnoresIdsOutsideTheTable) {
  const int N = 5, V = 3, C = 4;
  const std::vector<int> ids{0, -1, 3, 2, 0};
  std::vector<float> dout(N * C), dweight(V * C, -7.0f);
  for (int i = 0; i < N * C; ++i) dout[i] = static_cast<float>(i + 1);
  k::embedding_backward(dweight.data(), dout.data(), ids.data(), N, V, C, nullptr, 32);
  for (int col = 0; col < C; ++col) {
    EXPECT_EQ(dweight[0 * C + col], dout[0 * C + col] + dout[4 * C + col]);
    EXPECT_EQ(dweight[1 * C + col], 0.0f);
    EXPECT_EQ(dweight[2 * C + col], dout[3 * C + col]);
  }
}

}  // namespace
}  // namespace minivlm::kernels::test
