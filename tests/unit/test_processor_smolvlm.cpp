// The SmolVLM image processor (data/processor_smolvlm.cpp) against transformers'
// SmolVLMImageProcessorPil and SmolVLMProcessor's image prompt: the evaluation photos, a wide
// (300x90), a tall (90x260) and a small (40x30) crop at longest_edge L = 192, tiles of M = 64,
// LANCZOS, with and without splitting, and one photo at L = M (a 1x1 grid); video frames as one
// tile each. Reached through ImageProcessor::for_model of a config whose vision.type is
// "smolvlm"; the same comparison with the global image first, or bicubic instead of lanczos,
// fails.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "core/error.h"
#include "data/processor.h"
#include "nn/config.h"
#include "test_image_goldens.h"

namespace minivlm {
namespace {

using image_test::crop;
using image_test::decoded;
using image_test::golden_f32;
using image_test::smolvlm_goldens;
using image_test::source_path;
using testing::HasSubstr;
using testing::ThrowsMessage;

// A SmolVLM model's config by hand: tiles of 64² in 8² patches, pixel shuffle 2, so N = 16.
ModelConfig smolvlm_config(int64_t longest_edge, bool splitting,
                           const std::string& resample = "lanczos") {
  ModelConfig c;
  c.vision.type = "smolvlm";
  c.vision.image_size = 64;
  c.vision.patch_size = 8;
  c.vision.resample = resample;
  c.vision.image_mean = {0.5f, 0.5f, 0.5f};
  c.vision.image_std = {0.5f, 0.5f, 0.5f};
  c.vision.longest_edge = longest_edge;
  c.vision.do_image_splitting = splitting;
  c.vision.video_longest_edge = 96;
  c.projector.pixel_shuffle = 2;
  c.image_token = "<image>";
  return c;
}

struct Comparison {
  int cases = 0, tile_counts_equal = 0, prompts_equal = 0;
  int tiles = 0, hashes_equal = 0;
  int64_t values = 0, exact = 0;
  double max_err = 0, max_sum_err = 0;
};

enum class Mistake { none, bicubic, global_first };

// The golden cases of `key` through `process`, compared with transformers': the tile count, the
// prompt, and per tile the stored (strided) values, the channel sums, the hash of its float32
// bytes.
template <typename Process>
Comparison compare(const char* key, Mistake mistake, Process process) {
  Comparison r;
  for (const auto& c : smolvlm_goldens()[key]) {
    const std::string name = c["name"];
    SCOPED_TRACE(name + " L=" + std::to_string(c["longest_edge"].get<int>()) +
                 (c["splitting"].get<bool>() ? " split" : " single"));
    const int m = c["tile_size"], stride = c["stride"];
    ModelConfig config = smolvlm_config(c["longest_edge"], c["splitting"],
                                        mistake == Mistake::bicubic ? "bicubic" : "lanczos");
    ProcessedImage p = process(crop(decoded(c["input"]), c["crop"]), config);
    const size_t tile = size_t(3) * m * m;
    if (mistake == Mistake::global_first && p.tiles > 1)
      std::rotate(p.pixels.begin(), p.pixels.end() - tile, p.pixels.end());
    ++r.cases;
    r.tile_counts_equal += p.tiles == c["tiles"].get<int64_t>();
    r.prompts_equal += p.prompt.text == c["prompt"].get<std::string>();
    EXPECT_EQ(p.prompt.image_tokens, p.tiles * 16);
    if (p.tiles != c["tiles"].get<int64_t>() || p.pixels.size() != size_t(p.tiles) * tile) continue;
    const std::vector<float> want = golden_f32(c);
    size_t k = 0;
    for (int64_t t = 0; t < p.tiles; ++t) {
      const float* px = &p.pixels[t * tile];
      for (int ch = 0; ch < 3; ++ch) {
        double sum = 0;
        for (int i = 0; i < m * m; ++i) sum += px[size_t(ch) * m * m + i];
        r.max_sum_err =
            std::max(r.max_sum_err, std::fabs(sum - c["channel_sums"][t][ch].get<double>()));
        for (int y = 0; y < m; y += stride)
          for (int x = 0; x < m; x += stride, ++k) {
            if (k >= want.size()) continue;
            const float got = px[(size_t(ch) * m + y) * m + x];
            r.max_err = std::max(r.max_err, std::fabs(double(got) - double(want[k])));
            r.exact += got == want[k];
            ++r.values;
          }
      }
      r.hashes_equal +=
          image_test::fnv1a64_hex(px, tile * sizeof(float)) == c["fnv1a64"][t].get<std::string>();
      ++r.tiles;
    }
    EXPECT_EQ(k, want.size());
  }
  return r;
}

ProcessedImage through_for_model(const RgbImage& img, const ModelConfig& config) {
  return ImageProcessor::for_model(config)->process(img);
}

void print(const char* what, const Comparison& r) {
  std::printf(
      "[ stats    ] %s: %d cases, tile counts %d/%d, prompts %d/%d, %d tiles, %lld values, "
      "%lld exact, max |err| %.3g, max channel-sum err %.3g, tiles bit-identical %d/%d\n",
      what, r.cases, r.tile_counts_equal, r.cases, r.prompts_equal, r.cases, r.tiles,
      static_cast<long long>(r.values), static_cast<long long>(r.exact), r.max_err, r.max_sum_err,
      r.hashes_equal, r.tiles);
}

TEST(SmolvlmProcessor, MatchesSmolVLMImageProcessorPil) {
  const Comparison r = compare("smolvlm", Mistake::none, through_for_model);
  EXPECT_EQ(r.cases, 19);  // 9 images × split on/off + one 1x1 grid
  EXPECT_EQ(r.tile_counts_equal, r.cases);
  EXPECT_EQ(r.prompts_equal, r.cases);
  EXPECT_EQ(r.tiles, 6 * 11 + 5 + 8 + 11 + 1);
  EXPECT_LE(r.max_err, 1e-6);
  EXPECT_LE(r.max_sum_err, 1e-3);
  EXPECT_EQ(r.hashes_equal, r.tiles) << "tiles bit-identical to transformers'";
  print("smolvlm vs SmolVLMImageProcessorPil", r);
}

// The comparison catches the mistakes a port is likely to make.
TEST(SmolvlmProcessor, GlobalImageFirstOrBicubicFailsTheComparison) {
  for (const Mistake m : {Mistake::global_first, Mistake::bicubic}) {
    const Comparison r = compare("smolvlm", m, through_for_model);
    const char* what = m == Mistake::bicubic ? "bicubic instead of lanczos" : "global image first";
    EXPECT_GT(r.max_err, 1e-2) << what;
    // Moving the global image changes nothing in the 10 one-tile cases and every split tile.
    EXPECT_EQ(r.hashes_equal, m == Mistake::global_first ? 10 : 0) << what;
    print(what, r);
  }
}

TEST(SmolvlmProcessor, VideoFrameIsOneTileAtTheVideoLongestEdge) {
  const Comparison r = compare("smolvlm_frame", Mistake::none, smolvlm_frame_tile);
  EXPECT_EQ(r.cases, 4);
  EXPECT_EQ(r.tiles, 4);
  EXPECT_EQ(r.prompts_equal, r.cases);
  EXPECT_LE(r.max_err, 1e-6);
  EXPECT_EQ(r.hashes_equal, r.tiles);
  print("smolvlm_frame_tile vs SmolVLMImageProcessorPil (video longest edge, no split)", r);
  // A frame is not split even when the image processor splits, and its size is the video's.
  const RgbImage photo = decoded("tests/fixtures/images/image-01-golden-dog-balloons.jpg");
  ModelConfig c = smolvlm_config(192, true);
  const ProcessedImage frame = smolvlm_frame_tile(photo, c);
  EXPECT_EQ(frame.tiles, 1);
  EXPECT_EQ(frame.pixels, through_for_model(photo, smolvlm_config(96, false)).pixels);
  EXPECT_NE(frame.pixels, through_for_model(photo, smolvlm_config(192, false)).pixels);
  c.vision.video_longest_edge = 0;  // straight to one tile
  EXPECT_EQ(smolvlm_frame_tile(photo, c).pixels,
            normalize_planar(resize(photo, 64, 64, Resample::lanczos),
                             {c.vision.image_mean, c.vision.image_std}));
}

TEST(SmolvlmProcessor, ForModelReadsTheConfig) {
  const std::shared_ptr<const ImageProcessor> p =
      ImageProcessor::for_model(smolvlm_config(192, true));
  EXPECT_EQ(p->tile_size(), 64);
  EXPECT_EQ(p->image_token(), "<image>");
  const ClipNorm half{{0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}};
  const RgbImage photo = decoded("tests/fixtures/images/image-04-yellow-car.jpg");
  // longest_edge 0: no first resize, the 640x640 photo is cut into 10x10 tiles + the global one.
  EXPECT_EQ(ImageProcessor::for_model(smolvlm_config(0, true))->process(photo).tiles, 101);
  // Without splitting, one tile: the resized photo resized again.
  EXPECT_EQ(
      ImageProcessor::for_model(smolvlm_config(192, false))->process(photo).pixels,
      normalize_planar(
          resize(resize(photo, 192, 192, Resample::lanczos), 64, 64, Resample::lanczos), half));
  // The tiles are the 192² image cut row-major, the global image last.
  const ProcessedImage split = p->process(photo);
  const RgbImage grid = resize(photo, 192, 192, Resample::lanczos);
  RgbImage second{64, 64, {}};  // row 0, column 1
  for (int y = 0; y < 64; ++y)
    second.pixels.insert(second.pixels.end(), &grid.pixels[(size_t(y) * 192 + 64) * 3],
                         &grid.pixels[(size_t(y) * 192 + 128) * 3]);
  const size_t tile = 3 * 64 * 64;
  EXPECT_EQ(std::vector<float>(split.pixels.begin() + tile, split.pixels.begin() + 2 * tile),
            normalize_planar(second, half));
  EXPECT_EQ(std::vector<float>(split.pixels.end() - tile, split.pixels.end()),
            normalize_planar(resize(grid, 64, 64, Resample::lanczos), half));
  EXPECT_THAT([] { ImageProcessor::for_model(smolvlm_config(192, true, "nearest")); },
              ThrowsMessage<Error>(HasSubstr("got 'nearest'")));
  ModelConfig bad = smolvlm_config(-1, true);
  EXPECT_THAT([&] { ImageProcessor::for_model(bad); },
              ThrowsMessage<Error>(HasSubstr("vision.longest_edge")));
  EXPECT_THROW(p->process(RgbImage{}), Error);
}

TEST(SmolvlmProcessor, LongestEdgeSizeAsTransformers) {
  using Size = std::array<int, 2>;
  EXPECT_EQ(smolvlm_longest_edge_size(300, 90, 192), (Size{192, 58}));  // int(57.6) = 57 → 58
  EXPECT_EQ(smolvlm_longest_edge_size(90, 260, 192), (Size{66, 192}));
  EXPECT_EQ(smolvlm_longest_edge_size(40, 30, 192), (Size{192, 144}));  // upscaled
  EXPECT_EQ(smolvlm_longest_edge_size(1920, 1080, 2048), (Size{2048, 1152}));
  EXPECT_EQ(smolvlm_longest_edge_size(300, 1000, 2048), (Size{614, 2048}));
  EXPECT_EQ(smolvlm_longest_edge_size(1, 1000, 192), (Size{1, 192}));  // int(0.192) = 0 → 1
  EXPECT_EQ(smolvlm_longest_edge_size(10000, 5000, 8000), (Size{4096, 2048}));  // capped
  EXPECT_THROW(smolvlm_longest_edge_size(0, 5, 192), Error);
}

TEST(SmolvlmProcessor, PromptStrings) {
  const std::string f = "<fake_token_around_image>";
  EXPECT_EQ(smolvlm_image_prompt(0, 0, 2, "<image>").text, f + "<global-img><image><image>" + f);
  EXPECT_EQ(smolvlm_image_prompt(0, 0, 2, "<image>").image_tokens, 2);
  const ImagePrompt p = smolvlm_image_prompt(2, 3, 1, "<image>");
  EXPECT_EQ(p.text, f + "<row_1_col_1><image>" + f + "<row_1_col_2><image>" + f +
                        "<row_1_col_3><image>\n" + f + "<row_2_col_1><image>" + f +
                        "<row_2_col_2><image>" + f + "<row_2_col_3><image>\n\n" + f +
                        "<global-img><image>" + f);
  EXPECT_EQ(p.image_tokens, 7);
  EXPECT_THROW(smolvlm_image_prompt(0, 2, 1, "<image>"), Error);
}

}  // namespace
}  // namespace minivlm
