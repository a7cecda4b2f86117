// The whole VLM of tests/fixtures/test-model.json and a batch for it, for the tests that train
// the model end to end.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "nn/vlm.h"
#include "op_test_util.h"

namespace minivlm::testing {

constexpr int64_t kImageToken = 12;

inline ModelConfig fixture_config() {
  std::ifstream f(MINIVLM_SOURCE_DIR "/tests/fixtures/test-model.json");
  EXPECT_TRUE(f) << "tests/fixtures/test-model.json";
  return ModelConfig::from_json(nlohmann::json::parse(f), "test-model.json");
}

// max |got − want| / max |want|
inline double rel_error(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.shape(), want.shape());
  const std::vector<double> a = got.to_double_vector(), b = want.to_double_vector();
  double scale = 0, err = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    scale = std::max(scale, std::abs(b[i]));
    err = std::max(err, std::abs(a[i] - b[i]));
  }
  return scale > 0 ? err / scale : err;
}

// Two samples: one image in the first, two in the second, padding and unsupervised prompt tokens.
inline VlmBatch make_batch(const ModelConfig& c) {
  const int64_t N = c.tokens_per_image(), S = c.vision.image_size, B = 2, T = 5 + 2 * N + 3;
  std::vector<int64_t> ids(static_cast<size_t>(B * T), 0), mask(ids.size(), 0);
  Rng rng(77);
  for (auto& v : ids) v = 100 + static_cast<int64_t>(rng.next_u64() % 6000);
  auto put_image = [&](int64_t b, int64_t at) {
    for (int64_t i = 0; i < N; ++i) ids[static_cast<size_t>(b * T + at + i)] = kImageToken;
  };
  put_image(0, 2);
  put_image(1, 1);
  put_image(1, 2 + N);
  for (int64_t t = 3 + N; t < T - 2; ++t) mask[static_cast<size_t>(t)] = 1;  // sample 0
  for (int64_t t = 3 + 2 * N; t < T; ++t) mask[static_cast<size_t>(T + t)] = 1;
  VlmBatch batch;
  batch.ids = Tensor::from_vector(ids, {B, T});
  batch.label_mask = Tensor::from_vector(mask, {B, T});
  batch.pixels = randn(rng, {3, 3, S, S}, DType::f32);
  batch.images_per_sample = {1, 2};
  return batch;
}

}  // namespace minivlm::testing
