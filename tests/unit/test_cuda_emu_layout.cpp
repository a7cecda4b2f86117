// The CUDA back-end's layout host code on the emulated device: row gathers and scatters, SiLU, the
// bias add, the pixel-shuffle kernel and concat, each against the CPU back-end.
#include <gtest/gtest.h>

#include <vector>

#include "core/device.h"
#include "device_test_util.h"

namespace minivlm {
namespace {

using testing::expect_same;
using testing::kEmu;
using testing::randn;

TEST(CudaEmuLayout, ConcatGatherScatterSilu) {
  const Tensor a = randn({2, 3, 4}, 3), b = randn({2, 1, 4}, 4);
  expect_same({a, b}, [](const auto& t) { return ops::concat({t[0], t[1]}, 1); });
  expect_same({a}, [](const auto& t) { return ops::concat({t[0], t[0]}, 2); });
  const Tensor x = randn({7, 5}, 5), src = randn({3, 5}, 6);
  const Tensor idx = Tensor::from_vector(std::vector<int64_t>{4, 0, 4, 6}, {4});
  expect_same({x, idx}, [](const auto& t) { return ops::gather_rows(t[0], t[1]); });
  const Tensor rows = Tensor::from_vector(std::vector<int64_t>{5, 1, 2}, {3});
  expect_same({x, rows, src}, [](const auto& t) { return ops::scatter_rows(t[0], t[1], t[2]); });
  expect_same({x}, [](const auto& t) { return ops::silu(t[0]); });
}

TEST(CudaEmuLayout, BiasAddAndOneElementBroadcast) {
  const Tensor a = randn({3, 2, 300}, 12), bias = randn({300}, 13), one = randn({1}, 14);
  expect_same({a, bias}, [](const auto& t) { return ops::add(t[0], t[1]); });
  expect_same({a, one}, [](const auto& t) { return ops::add(t[0], t[1]); });
  // More rows than one chunk of the bias gradient's column sum.
  const Tensor tall = randn({2, 300, 7}, 15), narrow = randn({7}, 16);
  expect_same({tall, narrow}, [](const auto& t) { return ops::add(t[0], t[1]); });
}

TEST(CudaEmuLayout, PixelShuffleKernelAndPatchEmbed) {
  const Tensor x = randn({2, 36, 5}, 8);  // G = 6
  expect_same({x}, [](const auto& t) { return ops::pixel_shuffle(t[0], 2); });
  expect_same({x}, [](const auto& t) { return ops::pixel_shuffle(t[0], 3); });
  const Tensor px = randn({2, 3, 8, 8}, 9), w = randn({5, 3, 4, 4}, 10), bias = randn({5}, 11);
  expect_same({px, w, bias}, [](const auto& t) { return ops::patch_embed(t[0], t[1], t[2]); });
}

}  // namespace
}  // namespace minivlm
