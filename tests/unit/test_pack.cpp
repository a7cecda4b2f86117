// Packed micro-batches (--pack, SPEC §4.2): collation puts several samples per row without
// splitting any, the rows carry each sample's bounds and positions restarting at 0, and the
// model's loss and gradients over a packed batch equal those of the same samples unpacked.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "data/batch.h"
#include "nn/llm.h"
#include "test_dataset_fixtures.h"
#include "vlm_fixture.h"

namespace minivlm {
namespace {

using ::testing::ElementsAre;
using testing::fixture_config;
using testing::kImageToken;
using testing::rel_error;
using testing_data::make_sample;

TEST(PackCollate, FirstFitRowsPaddedAtTheEndWithBounds) {
  // Lengths 5, 3, 6, 2, 7 into rows of 8: [s0 s1] [s2 s3] [s4].
  const std::vector<Sample> samples = {
      make_sample({1, 2, 3, 4, 5}, {1, 0, 1, 1, 1}, 0, 0.f),  // first label 1: dropped packed
      make_sample({6, 12, 12}, {0, 0, 1}, 1, 100.f),
      make_sample({7, 8, 9, 10, 11, 13}, {0, 0, 0, 1, 1, 1}, 0, 0.f),
      make_sample({14, 15}, {0, 1}, 0, 0.f),
      make_sample({16, 17, 18, 19, 20, 21, 22}, {0, 1, 1, 1, 1, 1, 1}, 2, 200.f)};
  const MicroBatch mb = collate(samples, {40, 41, 42, 43, 44}, 0, 2, 8);
  EXPECT_EQ(mb.batch.ids.shape(), (Shape{3, 8}));
  EXPECT_THAT(mb.batch.ids.to_int_vector(), ElementsAre(1, 2, 3, 4, 5, 6, 12, 12,     //
                                                        7, 8, 9, 10, 11, 13, 14, 15,  //
                                                        16, 17, 18, 19, 20, 21, 22, 0));
  EXPECT_THAT(mb.batch.label_mask.to_int_vector(), ElementsAre(0, 0, 1, 1, 1, 0, 0, 1,  //
                                                               0, 0, 0, 1, 1, 1, 0, 1,  //
                                                               0, 1, 1, 1, 1, 1, 1, 0));
  ASSERT_EQ(mb.batch.seq_bounds.size(), 3u);
  EXPECT_THAT(mb.batch.seq_bounds[0], ElementsAre(0, 5, 8));
  EXPECT_THAT(mb.batch.seq_bounds[1], ElementsAre(0, 6, 8));
  EXPECT_THAT(mb.batch.seq_bounds[2], ElementsAre(0, 7));
  EXPECT_THAT(mb.samples, ElementsAre(40, 41, 42, 43, 44));
  EXPECT_THAT(mb.sample_rows, ElementsAre(0, 0, 1, 1, 2));
  EXPECT_THAT(mb.batch.images_per_sample, ElementsAre(1, 0, 2));
  EXPECT_THAT(mb.batch.tiles_per_image, ElementsAre(1, 1, 1));
  // Each sample's supervised targets, position 0 of a sample never counted: 3 + 1 + 3 + 1 + 6.
  EXPECT_EQ(mb.supervised_tokens, 14);
  EXPECT_EQ(mb.batch.supervised_tokens(), 14);
  EXPECT_EQ(mb.tokens, 23);
}

TEST(PackCollate, ImagesFollowTheRowsAndLongSamplesGetARow) {
  // Lengths 6, 5, 2, 10 into rows of 8: s2 fits after s0, s3 (longer than 8) has a row alone.
  const std::vector<Sample> samples = {
      make_sample({1, 12, 12, 2, 3, 4}, {0, 0, 0, 0, 1, 1}, 1, 100.f),
      make_sample({5, 12, 12, 6, 7}, {0, 0, 0, 1, 1}, 1, 200.f),
      make_sample({12, 12}, {0, 1}, 1, 300.f),
      make_sample({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {0, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0.f)};
  const MicroBatch mb = collate(samples, {0, 1, 2, 3}, 0, 2, 8);
  EXPECT_EQ(mb.batch.ids.shape(), (Shape{3, 10}));
  EXPECT_THAT(mb.sample_rows, ElementsAre(0, 1, 0, 2));
  EXPECT_THAT(mb.batch.seq_bounds[0], ElementsAre(0, 6, 8));
  EXPECT_THAT(mb.batch.seq_bounds[1], ElementsAre(0, 5));
  EXPECT_THAT(mb.batch.seq_bounds[2], ElementsAre(0, 10));
  EXPECT_THAT(mb.batch.images_per_sample, ElementsAre(2, 1, 0));
  // Tiles row by row: s0's, s2's (row 0), then s1's (row 1).
  const std::vector<float> px = mb.batch.pixels.to_float_vector();
  ASSERT_EQ(px.size(), 36u);
  EXPECT_EQ(px[0], 100.f);
  EXPECT_EQ(px[12], 300.f);
  EXPECT_EQ(px[24], 200.f);
  // Every image run stays whole, in its sample's row.
  const std::vector<int64_t> ids = mb.batch.ids.to_int_vector();
  EXPECT_THAT(std::vector<int64_t>(ids.begin(), ids.begin() + 10),
              ElementsAre(1, 12, 12, 2, 3, 4, 12, 12, 0, 0));
  EXPECT_EQ(mb.supervised_tokens, 2 + 2 + 1 + 9);
}

TEST(PackCollate, WithoutPackingRowsAreSamples) {
  const std::vector<Sample> samples = {make_sample({5, 6, 7}, {1, 1, 1}, 0, 0.f),
                                       make_sample({8, 9}, {0, 1}, 0, 0.f)};
  const MicroBatch mb = collate(samples, {3, 4}, 0, 2);
  EXPECT_TRUE(mb.batch.seq_bounds.empty());
  EXPECT_THAT(mb.sample_rows, ElementsAre(0, 1));
  EXPECT_THAT(mb.batch.label_mask.to_int_vector(), ElementsAre(1, 1, 1, 0, 1, 0));
  EXPECT_EQ(mb.tokens, 5);
}

TEST(PackedRows, PositionsRestartPerSampleAndPaddingIsItsOwn) {
  const PackedRows p = PackedRows::from_bounds({{0, 3, 5}, {0, 7}}, 7);
  EXPECT_THAT(p.seq_start.to_int_vector(), ElementsAre(0, 0, 0, 3, 3, 5, 5, 0, 0, 0, 0, 0, 0, 0));
  EXPECT_THAT(p.positions.to_int_vector(), ElementsAre(0, 1, 2, 0, 1, 0, 1, 0, 1, 2, 3, 4, 5, 6));
  EXPECT_THROW(PackedRows::from_bounds({{1, 3}}, 7), Error);
  EXPECT_THROW(PackedRows::from_bounds({{0, 9}}, 7), Error);
}

// Samples for the fixture model: prompt tokens, `images` runs of N image tokens, a supervised
// reply; lengths differ.
std::vector<Sample> model_samples(const ModelConfig& c) {
  const int64_t N = c.tokens_per_image(), S = c.vision.image_size;
  Rng rng(2024);
  std::vector<Sample> out;
  for (const auto& [prompt, images, reply] :
       std::vector<std::tuple<int, int, int>>{{3, 1, 5}, {6, 0, 9}, {2, 2, 4}, {4, 0, 3}}) {
    Sample s;
    const auto tok = [&](bool supervised) {
      s.ids.push_back(100 + static_cast<int32_t>(rng.next_u64() % 6000));
      s.labels.push_back(supervised ? 1 : 0);
    };
    for (int i = 0; i < prompt; ++i) tok(false);
    for (int k = 0; k < images; ++k) {
      for (int64_t i = 0; i < N; ++i) {
        s.ids.push_back(static_cast<int32_t>(kImageToken));
        s.labels.push_back(0);
      }
      tok(false);
    }
    for (int i = 0; i < reply; ++i) tok(true);
    s.num_images = images;
    s.tiles_per_image.assign(static_cast<size_t>(images), 1);
    const std::vector<float> px =
        testing::randn(rng, {images, 3, S, S}, DType::f32).to_float_vector();
    s.pixels = px;
    out.push_back(std::move(s));
  }
  return out;
}

// The summed loss of micro-batch `mb` over only the targets of sample k (its label mask cleared
// elsewhere), divided by `denominator`.
Tensor sample_loss(const MiniMindVLM& model, const MicroBatch& mb, const std::vector<Sample>& all,
                   size_t k, double denominator) {
  VlmBatch b = mb.batch;
  std::vector<int64_t> mask(static_cast<size_t>(b.ids.numel()), 0);
  const std::vector<int64_t> full = b.label_mask.to_int_vector();
  const int64_t T = b.ids.size(1), row = mb.sample_rows[k];
  // The sample's first token in its row: after the samples placed in that row before it.
  int64_t at = 0;
  for (size_t i = 0; i < k; ++i)
    if (mb.sample_rows[i] == row) at += static_cast<int64_t>(all[i].ids.size());
  for (size_t t = 0; t < all[k].ids.size(); ++t)
    mask[static_cast<size_t>(row * T + at) + t] = full[static_cast<size_t>(row * T + at) + t];
  b.label_mask = Tensor::from_vector(mask, b.label_mask.shape());
  return model.forward(b, denominator).loss;
}

// Each sample's loss in a packed row equals its loss alone (within 1e-5), and the gradients of
// the whole packed batch equal those of the same samples padded one per row.
TEST(PackedModel, PerSampleLossesAndGradientsEqualUnpacked) {
  const ModelConfig c = fixture_config();
  MiniMindVLM model(c, kImageToken);
  model.init(5);
  for (NamedTensor& p : model.params())
    p.tensor.set_requires_grad(p.name.rfind("vision_encoder.", 0) != 0);
  const std::vector<Sample> samples = model_samples(c);
  const std::vector<int64_t> idx = {0, 1, 2, 3};
  const int64_t S = c.vision.image_size;
  // Rows of 32 tokens hold two or three of these samples.
  const MicroBatch packed = collate(samples, idx, 0, S, 32);
  const MicroBatch padded = collate(samples, idx, 0, S);
  ASSERT_LT(packed.batch.ids.size(0), padded.batch.ids.size(0));
  ASSERT_EQ(packed.supervised_tokens, padded.supervised_tokens);
  {
    NoGradGuard ng;
    for (size_t k = 0; k < samples.size(); ++k) {
      const MicroBatch alone = collate({samples[k]}, {0}, 0, S);
      const double want = model.forward(alone.batch).loss.item();
      const double got = sample_loss(model, packed, samples, k, alone.supervised_tokens).item();
      EXPECT_NEAR(got, want, 1e-5 * std::max(1.0, std::abs(want))) << "sample " << k;
    }
  }
  const auto grads = [&](const MicroBatch& mb) {
    for (NamedTensor& p : model.params()) p.tensor.zero_grad();
    const Tensor loss = model.forward(mb.batch, static_cast<double>(mb.supervised_tokens)).loss;
    loss.backward();
    std::vector<Tensor> out;
    for (const NamedTensor& p : model.trainable_params()) out.push_back(p.tensor.grad().clone());
    return std::pair{loss.item(), out};
  };
  const auto [loss_padded, g_padded] = grads(padded);
  const auto [loss_packed, g_packed] = grads(packed);
  EXPECT_NEAR(loss_packed, loss_padded, 1e-5 * loss_padded);
  ASSERT_EQ(g_packed.size(), g_padded.size());
  for (size_t i = 0; i < g_padded.size(); ++i)
    EXPECT_LE(rel_error(g_packed[i], g_padded[i]), 1e-4) << "gradient " << i;
}

}  // namespace
}  // namespace minivlm
