// Every op's backward against central finite differences in f64.
#include <gtest/gtest.h>

#include "op_test_util.h"

namespace minivlm {
namespace {

using testing::gradcheck;
using testing::randn;
using In = std::vector<Tensor>;

TEST(OpsBackward, MatmulAndLinear) {
  Rng rng(21);
  for (auto [m, k, n] : {std::tuple{1, 1, 1}, {7, 3, 5}, {2, 65, 1}}) {
    gradcheck([](const In& x) { return ops::matmul(x[0], x[1]); },
              {randn(rng, {2, m, k}), randn(rng, {k, n})});
    gradcheck([](const In& x) { return ops::linear(x[0], x[1], x[2]); },
              {randn(rng, {m, k}), randn(rng, {n, k}), randn(rng, {n})});
  }
  // Broadcast batch dimensions reduce in the backward.
  gradcheck([](const In& x) { return ops::matmul(x[0], x[1]); },
            {randn(rng, {3, 1, 2, 4}), randn(rng, {2, 4, 3})});
}

TEST(OpsBackward, Elementwise) {
  Rng rng(22);
  gradcheck([](const In& x) { return ops::add(x[0], x[1]); },
            {randn(rng, {3, 1, 7}), randn(rng, {5, 1})});
  gradcheck([](const In& x) { return ops::sub(x[0], x[1]); },
            {randn(rng, {7}), randn(rng, {2, 7})});
  gradcheck([](const In& x) { return ops::mul(x[0], x[1]); },
            {randn(rng, {3, 1, 7}), randn(rng, {5, 1})});
  gradcheck([](const In& x) { return ops::scale(x[0], -1.5); }, {randn(rng, {7})});
  gradcheck([](const In& x) { return ops::sum(x[0], 1); }, {randn(rng, {3, 7, 2})});
  gradcheck([](const In& x) { return ops::mean(x[0], 0, true); }, {randn(rng, {3, 7})});
  gradcheck([](const In& x) { return ops::mean(x[0]); }, {randn(rng, {1})});
}

TEST(OpsBackward, Activations) {
  Rng rng(23);
  for (int n : {1, 7, 65}) {
    gradcheck([](const In& x) { return ops::silu(x[0]); }, {randn(rng, {n}, DType::f64, 2.0)});
    gradcheck([](const In& x) { return ops::gelu(x[0]); }, {randn(rng, {n}, DType::f64, 2.0)});
    gradcheck([](const In& x) { return ops::quick_gelu(x[0]); },
              {randn(rng, {n}, DType::f64, 2.0)});
    gradcheck([](const In& x) { return ops::swiglu(x[0], x[1]); },
              {randn(rng, {n}), randn(rng, {n})});
    gradcheck([](const In& x) { return ops::softmax(x[0]); },
              {randn(rng, {2, n}, DType::f64, 2.0)});
  }
}

TEST(OpsBackward, Norms) {
  Rng rng(24);
  for (int n : {1, 7, 65}) {
    gradcheck([](const In& x) { return ops::rmsnorm(x[0], x[1], 1e-5); },
              {randn(rng, {3, n}), randn(rng, {n})});
    if (n > 1)  // LayerNorm of one element is constant: its gradient is 0 and ill-conditioned
      gradcheck([](const In& x) { return ops::layernorm(x[0], x[1], x[2], 1e-5); },
                {randn(rng, {3, n}), randn(rng, {n}), randn(rng, {n})});
  }
}

TEST(OpsBackward, Rope) {
  Rng rng(25);
  gradcheck([](const In& x) { return ops::rope(x[0], 10000.0, 3); }, {randn(rng, {2, 7, 3, 4})});
}

TEST(OpsBackward, AttentionGqaCausalAndBidirectional) {
  Rng rng(26);
  for (int T : {1, 7, 65})
    for (int group : {1, 2, 4})
      for (bool causal : {true, false}) {
        if (T == 65 && group != 2) continue;  // keep the finite-difference sweep small
        const int nkv = 1, nq = group, hd = 4, B = T == 65 ? 1 : 2;
        gradcheck(
            [causal](const In& x) { return ops::attention(x[0], x[1], x[2], causal); },
            {randn(rng, {B, T, nq, hd}), randn(rng, {B, T, nkv, hd}), randn(rng, {B, T, nkv, hd})});
      }
  // Fewer queries than keys (the cached-decoding shape).
  gradcheck([](const In& x) { return ops::attention(x[0], x[1], x[2], true); },
            {randn(rng, {1, 2, 2, 4}), randn(rng, {1, 5, 1, 4}), randn(rng, {1, 5, 1, 4})});
}

TEST(OpsBackward, CrossEntropyMasks) {
  Rng rng(27);
  const std::vector<std::vector<int64_t>> cases = {
      {3, -100, 6, 0, -100, 2, 5}, std::vector<int64_t>(7, -100), {1, 2, 3, 4, 5, 6, 0}};
  for (const auto& t : cases) {
    const Tensor targets = Tensor::from_vector(t, {7});
    gradcheck([&](const In& x) { return ops::cross_entropy(x[0], targets); },
              {randn(rng, {7, 7}, DType::f64, 2.0)});
    gradcheck([&](const In& x) { return ops::cross_entropy(x[0], targets, -100, 9.0); },
              {randn(rng, {7, 7}, DType::f64, 2.0)});
  }
}

TEST(OpsBackward, EmbeddingRowsConcat) {
  Rng rng(28);
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{4, 0, 4, 2, 4}, {5});
  gradcheck([&](const In& x) { return ops::embedding(x[0], ids); }, {randn(rng, {5, 3})});
  gradcheck([&](const In& x) { return ops::gather_rows(x[0], ids); }, {randn(rng, {5, 3})});
  const Tensor rows = Tensor::from_vector(std::vector<int64_t>{3, 0}, {2});
  gradcheck([&](const In& x) { return ops::scatter_rows(x[0], rows, x[1]); },
            {randn(rng, {5, 3}), randn(rng, {2, 3})});
  gradcheck(
      [](const In& x) {
        return ops::concat({x[0], x[1], x[0]}, 0);
      },
      {randn(rng, {2, 3}), randn(rng, {1, 3})});
}

TEST(OpsBackward, VisionOps) {
  Rng rng(29);
  gradcheck([](const In& x) { return ops::patch_embed(x[0], x[1], x[2]); },
            {randn(rng, {1, 2, 4, 6}), randn(rng, {3, 2, 2, 2}), randn(rng, {3})});
  for (int r : {1, 2})
    gradcheck([r](const In& x) { return ops::pixel_shuffle(x[0], r); }, {randn(rng, {16, 3})});
}

TEST(OpsBackward, Views) {
  Rng rng(30);
  gradcheck(
      [](const In& x) {
        return x[0].transpose(0, 2).reshape({-1, 2});
      },
      {randn(rng, {2, 3, 4})});
  gradcheck(
      [](const In& x) {
        return x[0].permute({2, 0, 1}).contiguous();
      },
      {randn(rng, {2, 3, 4})});
  gradcheck([](const In& x) { return x[0].slice(1, 1, 7, 2); }, {randn(rng, {2, 7})});
  gradcheck([](const In& x) { return x[0].narrow(0, 1, 2).select(1, 3); }, {randn(rng, {4, 5})});
  gradcheck([](const In& x) { return x[0].unsqueeze(1).squeeze(1).to(DType::f32).to(DType::f64); },
            {randn(rng, {3})}, 7, 1e-3, 1e-3, 1e-5);
}

}  // namespace
}  // namespace minivlm
