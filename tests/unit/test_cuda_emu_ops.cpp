// The CUDA back-end's host code on the emulated device: every routed op on cuda-emu tensors
// against the CPU back-end, forward and backward, fp32 within 1e-5 of the tensor's scale.
#include <gtest/gtest.h>

#include <vector>

#include "core/device.h"
#include "device_test_util.h"

namespace minivlm {
namespace {

using testing::expect_same;
using testing::kEmu;
using testing::randn;

TEST(CudaEmu, ElementwiseWithBroadcasting) {
  const Tensor a = randn({3, 4, 5}, 1), b = randn({4, 1}, 2), c = randn({3, 4, 5}, 3);
  expect_same({a, b}, [](const auto& t) { return ops::add(t[0], t[1]); });
  expect_same({a, b}, [](const auto& t) { return ops::sub(t[0], t[1]); });
  expect_same({a, b}, [](const auto& t) { return ops::mul(t[0], t[1]); });
  expect_same({a, c}, [](const auto& t) { return ops::mul(t[0], t[1]); });
  expect_same({a}, [](const auto& t) { return ops::scale(t[0], -0.75); });
  expect_same({a}, [](const auto& t) { return ops::sum(t[0], 1, false); });
  expect_same({a}, [](const auto& t) { return ops::mean(t[0]); });
}

TEST(CudaEmu, MatmulAndLinear) {
  const Tensor a = randn({2, 5, 7}, 4), b = randn({7, 3}, 5), bt = randn({3, 7}, 6);
  expect_same({a, b}, [](const auto& t) { return ops::matmul(t[0], t[1]); });
  expect_same({a, bt}, [](const auto& t) { return ops::matmul(t[0], t[1].transpose(0, 1)); });
  const Tensor w = randn({6, 7}, 7), bias = randn({6}, 8);
  expect_same({a, w, bias}, [](const auto& t) { return ops::linear(t[0], t[1], t[2]); });
  const Tensor ba = randn({2, 3, 4}, 9), bb = randn({2, 4, 5}, 10);
  expect_same({ba, bb}, [](const auto& t) { return ops::matmul(t[0], t[1]); });
}

TEST(CudaEmu, Activations) {
  const Tensor x = randn({3, 37}, 11), y = randn({3, 37}, 12);
  expect_same({x}, [](const auto& t) { return ops::gelu(t[0]); });
  expect_same({x}, [](const auto& t) { return ops::quick_gelu(t[0]); });
  expect_same({x, y}, [](const auto& t) { return ops::swiglu(t[0], t[1]); });
  expect_same({x}, [](const auto& t) { return ops::softmax(t[0]); });
}

TEST(CudaEmu, Norms) {
  const Tensor x = randn({2, 3, 40}, 13), w = randn({40}, 14), b = randn({40}, 15);
  expect_same({x, w}, [](const auto& t) { return ops::rmsnorm(t[0], t[1], 1e-5); });
  expect_same({x, w, b}, [](const auto& t) { return ops::layernorm(t[0], t[1], t[2], 1e-5); });
}

TEST(CudaEmu, RopeAndEmbedding) {
  const Tensor x = randn({2, 5, 3, 8}, 16);
  expect_same({x}, [](const auto& t) { return ops::rope(t[0], 10000.0, 3); });
  const Tensor w = randn({11, 6}, 17);
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{3, 0, 10, 3, 3, 7}, {2, 3});
  expect_same({w, ids}, [](const auto& t) { return ops::embedding(t[0], t[1]); });
}

TEST(CudaEmu, AttentionCausalGqaAndBidirectional) {
  const Tensor q = randn({2, 5, 4, 8}, 18), k = randn({2, 5, 2, 8}, 19),
               v = randn({2, 5, 2, 8}, 20);
  expect_same({q, k, v}, [](const auto& t) { return ops::attention(t[0], t[1], t[2], true); });
  expect_same({q, k, v}, [](const auto& t) { return ops::attention(t[0], t[1], t[2], false); });
  // Fewer queries than keys (a cache): query i sees keys up to i + Tk − Tq.
  const Tensor q2 = randn({1, 2, 2, 8}, 21), k2 = randn({1, 6, 1, 8}, 22),
               v2 = randn({1, 6, 1, 8}, 23);
  expect_same({q2, k2, v2}, [](const auto& t) { return ops::attention(t[0], t[1], t[2], true); });
  // One query row (a decode step) takes the key-split kernel; 300 keys are three chunks.
  const Tensor q3 = randn({2, 1, 4, 32}, 60), k3 = randn({2, 300, 2, 32}, 61),
               v3 = randn({2, 300, 2, 32}, 62);
  expect_same({q3, k3, v3}, [](const auto& t) { return ops::attention(t[0], t[1], t[2], true); });
}

TEST(CudaEmu, CrossEntropyWithIgnoredRows) {
  const Tensor logits = randn({6, 9}, 24);
  const Tensor targets = Tensor::from_vector(std::vector<int64_t>{2, -100, 8, 0, -100, 5}, {6});
  expect_same({logits, targets},
              [](const auto& t) { return ops::cross_entropy(t[0], t[1], ops::kIgnoreIndex); });
  expect_same({logits, targets}, [](const auto& t) {
    return ops::cross_entropy(t[0], t[1], ops::kIgnoreIndex, 10.0);
  });
}

TEST(CudaEmu, PixelShuffleAsViews) {
  const Tensor x = randn({2, 16, 3}, 25);
  expect_same({x}, [](const auto& t) { return ops::pixel_shuffle(t[0], 2); });
}

}  // namespace
}  // namespace minivlm
