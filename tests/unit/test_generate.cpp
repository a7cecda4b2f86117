// Generation: the KV cache changes nothing (greedy tokens equal full recomputation), sampling is
// seeded and follows its distribution, streaming never splits a character, context limits are
// clear.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>

#include "infer/device_model.h"
#include "infer/generate.h"
#include "infer/utf8_stream.h"
#include "ops/ops.h"
#include "nn/vlm.h"

namespace minivlm {
namespace {

// The small test model with weights large enough that its logits are far from ties.
std::unique_ptr<MiniMindVLM> test_model() {
  std::ifstream f(std::string(MINIVLM_SOURCE_DIR) + "/tests/fixtures/test-model.json");
  const ModelConfig c = ModelConfig::from_json(nlohmann::json::parse(f), "test-model.json");
  auto m = std::make_unique<MiniMindVLM>(c, 12);
  m->init(17);
  for (NamedTensor& p : m->params()) {
    if (p.name.find("norm") != std::string::npos || p.name.find("layrnorm") != std::string::npos)
      continue;
    float* d = p.tensor.data<float>();
    for (int64_t i = 0; i < p.tensor.numel(); ++i) d[i] *= 8.0f;
  }
  return m;
}

struct Prompt {
  std::vector<std::vector<int32_t>> ids;
  Tensor pixels;
  std::vector<int64_t> images;
};

Prompt image_prompt(const MiniMindVLM& m, int rows) {
  Prompt p;
  const int64_t N = m.config().tokens_per_image(), S = m.config().vision.image_size;
  Rng rng(5);
  for (int r = 0; r < rows; ++r) {
    std::vector<int32_t> ids = {1, 4, 3};
    for (int64_t i = 0; i < N; ++i) ids.push_back(12);
    for (int i = 0; i < 6; ++i) ids.push_back(static_cast<int32_t>(100 + rng.below(5000)));
    p.ids.push_back(ids);
    p.images.push_back(1);
  }
  std::vector<float> px(static_cast<size_t>(rows * 3 * S * S));
  for (float& v : px) v = static_cast<float>(rng.normal());
  p.pixels = Tensor::from_vector(px, {rows, 3, S, S});
  return p;
}

TEST(Generate, GreedyWithCacheEqualsFullRecomputation) {
  const auto m = test_model();
  const Prompt p = image_prompt(*m, 3);
  GenerationOptions o;
  o.max_new_tokens = 24;
  o.sampling.greedy = true;
  o.eos_id = -1;  // never stop early: compare every step
  const auto cached = generate(*m, p.ids, {p.pixels, p.images}, o);
  o.use_cache = false;
  const auto recomputed = generate(*m, p.ids, {p.pixels, p.images}, o);
  ASSERT_EQ(cached.size(), 3u);
  for (size_t b = 0; b < 3; ++b) {
    EXPECT_EQ(cached[b].size(), 24u);
    EXPECT_EQ(cached[b], recomputed[b]) << "row " << b;
  }
  // Batched rows equal the same prompts one at a time.
  o.use_cache = true;
  for (size_t b = 0; b < 3; ++b) {
    const int64_t S = m->config().vision.image_size;
    const auto single = generate(
        *m, {p.ids[b]}, {p.pixels.narrow(0, static_cast<int64_t>(b), 1).contiguous(), {1}}, o);
    EXPECT_EQ(single[0], cached[b]) << "row " << b << " (S=" << S << ")";
  }
  // The image matters: other pixels give another reply.
  Prompt q = p;
  q.pixels = Tensor::zeros(p.pixels.shape());
  EXPECT_NE(generate(*m, q.ids, {q.pixels, q.images}, o)[0], cached[0]);
}

// The model on cuda-emu decodes through the op graph with the cache on the device (the flash
// decode kernel for every new token); its greedy tokens equal the CPU's f32 decoder's.
TEST(Generate, GreedyOnCudaEmuEqualsTheCpuDecoder) {
  const auto cpu = test_model();
  const auto emu = test_model();
  const Device dev{DeviceType::cuda_emu, 0};
  ASSERT_EQ(place_for_inference(*emu, "cuda-emu"), dev);
  ASSERT_EQ(emu->llm.embed_tokens.device(), dev);
  GenerationOptions o;
  o.max_new_tokens = 16;
  o.sampling.greedy = true;
  o.eos_id = -1;  // never stop early: compare every step
  o.decode_dtype = DecodeDtype::f32;
  const Prompt p = image_prompt(*cpu, 2);  // two rows, one image each, decoded together
  const auto want = generate(*cpu, p.ids, {p.pixels, p.images}, o);
  const auto got = generate(*emu, p.ids, {p.pixels, p.images}, o);
  ASSERT_EQ(got.size(), 2u);
  for (size_t b = 0; b < 2; ++b) {
    EXPECT_EQ(got[b].size(), 16u);
    EXPECT_EQ(got[b], want[b]) << "row " << b;
    // A reply of one repeated token would compare nothing of the cache's later positions.
    EXPECT_GT(std::set<int32_t>(want[b].begin(), want[b].end()).size(), 3u) << "row " << b;
  }
  // A prompt of another length with other pixels, alone.
  std::vector<int32_t> ids = p.ids[1];
  ids.insert(ids.end(), {200, 300, 400});
  const Tensor px = ops::scale(p.pixels.narrow(0, 1, 1).contiguous(), -0.5);
  EXPECT_EQ(generate(*emu, {ids}, {px, {1}}, o), generate(*cpu, {ids}, {px, {1}}, o));
}

// An image split into tiles fills one run of image tokens per tile, in order: one image of two
// tiles generates what two one-tile images with the same pixels and runs do, and a tile count
// that does not match the runs is rejected.
TEST(Generate, TilesOfOneImageFillTheirRunsInOrder) {
  const auto m = test_model();
  const Prompt one = image_prompt(*m, 1), two = image_prompt(*m, 2);
  std::vector<int32_t> ids = one.ids[0];
  const std::vector<int32_t> run(one.ids[0].begin() + 3,
                                 one.ids[0].begin() + 3 + m->config().tokens_per_image());
  ids.insert(ids.begin() + 3, 7);  // two runs, apart
  ids.insert(ids.begin() + 3, run.begin(), run.end());
  GenerationOptions o;
  o.max_new_tokens = 12;
  o.sampling.greedy = true;
  o.eos_id = -1;
  const auto as_tiles = generate(*m, {ids}, {two.pixels, {1}, {2}}, o);
  EXPECT_EQ(as_tiles, generate(*m, {ids}, {two.pixels, {2}}, o));
  EXPECT_NE(as_tiles, generate(*m, {ids}, {ops::scale(two.pixels, -1.0), {1}, {2}}, o));
  EXPECT_THROW(generate(*m, {ids}, {two.pixels, {1}, {1}}, o), Error);
}

TEST(Generate, SeededSamplingIsReproducibleAndTemperatureZeroIsGreedy) {
  const auto m = test_model();
  const Prompt p = image_prompt(*m, 1);
  GenerationOptions o;
  o.max_new_tokens = 16;
  o.eos_id = -1;
  o.sampling.temperature = 1.5;
  o.sampling.top_k = 0;
  o.sampling.top_p = 1.0;
  o.seed = 9;
  const auto a = generate(*m, p.ids, {p.pixels, p.images}, o);
  EXPECT_EQ(a, generate(*m, p.ids, {p.pixels, p.images}, o));
  o.seed = 10;
  EXPECT_NE(a, generate(*m, p.ids, {p.pixels, p.images}, o));
  o.sampling.temperature = 1e-6;
  const auto cold = generate(*m, p.ids, {p.pixels, p.images}, o);
  o.sampling.greedy = true;
  EXPECT_EQ(cold, generate(*m, p.ids, {p.pixels, p.images}, o));
}

TEST(Generate, PromptBeyondTheContextIsAClearError) {
  const auto m = test_model();
  const int64_t ctx = m->config().llm.max_position_embeddings;
  GenerationOptions o;
  o.max_new_tokens = 8;
  const std::vector<int32_t> long_prompt(static_cast<size_t>(ctx - 4), 100);
  try {
    generate(*m, {long_prompt}, {Tensor(), {0}}, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds the model's context of " + std::to_string(ctx)),
              std::string::npos)
        << e.what();
  }
}

TEST(Sampling, FiltersInMiniMindOrder) {
  Rng rng(1);
  SamplingOptions o;
  o.temperature = 1.0;
  o.top_p = 1.0;
  o.top_k = 1;
  EXPECT_EQ(choose_token({0.1f, 3.0f, 2.9f}, {}, o, rng), 1);
  // The penalty divides the seen token's positive logit: 3.0 / 2 < 2.9.
  o.repetition_penalty = 2.0;
  EXPECT_EQ(choose_token({0.1f, 3.0f, 2.9f}, {1}, o, rng), 2);
  // A negative logit is multiplied instead: −0.5 · 4 = −2 < −1.
  o.repetition_penalty = 4.0;
  EXPECT_EQ(choose_token({-0.5f, -1.0f, -3.0f}, {0}, o, rng), 1);
  // top-p keeps the smallest prefix whose mass exceeds p: p = 0.5 with probabilities .6/.3/.1 keeps
  // one.
  o.repetition_penalty = 1.0;
  o.top_k = 0;
  o.top_p = 0.5;
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(choose_token({std::log(0.6f), std::log(0.3f), std::log(0.1f)}, {}, o, rng), 0);
}

TEST(Sampling, FollowsTheSoftmaxDistribution) {
  Rng rng(2);
  SamplingOptions o;
  o.temperature = 1.0;
  o.top_p = 1.0;
  o.top_k = 0;
  int counts[3] = {0, 0, 0};
  const int n = 30000;
  for (int i = 0; i < n; ++i)
    ++counts[choose_token({0.0f, std::log(2.0f), std::log(3.0f)}, {}, o, rng)];
  EXPECT_NEAR(counts[0] / double(n), 1.0 / 6, 0.01);
  EXPECT_NEAR(counts[1] / double(n), 2.0 / 6, 0.01);
  EXPECT_NEAR(counts[2] / double(n), 3.0 / 6, 0.01);
  // Temperature 0.5 squares the odds: 1 : 4 : 9.
  o.temperature = 0.5;
  counts[0] = counts[1] = counts[2] = 0;
  for (int i = 0; i < n; ++i)
    ++counts[choose_token({0.0f, std::log(2.0f), std::log(3.0f)}, {}, o, rng)];
  EXPECT_NEAR(counts[2] / double(n), 9.0 / 14, 0.01);
}

TEST(Utf8Stream, NeverSplitsACharacterAndLosesNothing) {
  const std::string text = "a€b😀中文 é\xF0\x9F\x91\x8D!";
  for (size_t chunk = 1; chunk <= 4; ++chunk) {
    Utf8Stream s;
    std::string out;
    for (size_t i = 0; i < text.size(); i += chunk) {
      const std::string piece = s.push(text.substr(i, chunk));
      // Every emitted piece ends on a character boundary: its last lead byte is complete.
      if (!piece.empty()) {
        size_t j = piece.size() - 1;
        while (j > 0 && (static_cast<unsigned char>(piece[j]) & 0xC0) == 0x80) --j;
        const unsigned char lead = static_cast<unsigned char>(piece[j]);
        const size_t len = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
        EXPECT_EQ(piece.size() - j, len) << "chunk " << chunk << " split a character";
      }
      out += piece;
    }
    out += s.flush();
    EXPECT_EQ(out, text);
  }
}

}  // namespace
}  // namespace minivlm
