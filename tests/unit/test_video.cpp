// Videos: FFmpeg decoding of tests/fixtures/video/tiny.mp4 against transformers' PyAV reader,
// SmolVLMVideoProcessor's frame sampling, SmolVLMProcessor's video prompt and num2words (goldens
// from scripts/reference/smolvlm_goldens.py), and the errors of unreadable files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include "core/error.h"
#include "data/video.h"

namespace minivlm {
namespace {

using nlohmann::json;
using testing::AllOf;
using testing::HasSubstr;
using testing::ThrowsMessage;

const std::string kTiny = MINIVLM_SOURCE_DIR "/tests/fixtures/video/tiny.mp4";

json golden(const std::string& name) {
  std::ifstream in(MINIVLM_SOURCE_DIR "/tests/goldens/video/" + name);
  return json::parse(in);
}

std::string temp_file(const std::string& name, const std::string& bytes) {
  const std::filesystem::path p = std::filesystem::path(::testing::TempDir()) /
                                  ("minivlm_video_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p, std::ios::binary) << bytes;
  return p.string();
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The fixture's metadata, sampled indices, timestamps and frames as read_video_pyav gives them.
TEST(Video, TinyMp4MatchesTransformersPyAvReader) {
  const VideoInfo info = probe_video(kTiny);
  for (const json& f : golden("sampling.json")["files"]) {
    EXPECT_EQ(info.total_frames, f["total_num_frames"].get<int64_t>());
    EXPECT_EQ(info.fps, f["fps"].get<double>());
    EXPECT_EQ(info.duration, f["duration"].get<double>());
    EXPECT_EQ(info.width, f["width"].get<int>());
    EXPECT_EQ(info.height, f["height"].get<int>());
    const VideoSampling sampling{f["sample_fps"], f["max_frames"]};
    const std::vector<int64_t> indices = sample_frame_indices(info, sampling);
    EXPECT_EQ(indices, f["indices"].get<std::vector<int64_t>>());
    EXPECT_EQ(frame_timestamps(indices, info.fps), f["timestamps"].get<std::vector<double>>());
    const std::vector<RgbImage> frames = decode_video_frames(kTiny, indices);
    ASSERT_EQ(frames.size(), indices.size());
    // Mean colour per frame: which frame was decoded (frame i is flat (8i, 255 − 8i, 128)).
    // PyAV's bundled FFmpeg and the system's may round the YUV→RGB conversion differently, so
    // pixels are held to within 2 of PyAV's.
    const auto means = f["mean_rgb"].get<std::vector<std::vector<double>>>();
    for (size_t k = 0; k < frames.size(); ++k) {
      ASSERT_EQ(frames[k].width, 32);
      ASSERT_EQ(frames[k].height, 24);
      for (int c = 0; c < 3; ++c) {
        double sum = 0;
        for (size_t p = static_cast<size_t>(c); p < frames[k].pixels.size(); p += 3)
          sum += frames[k].pixels[p];
        EXPECT_NEAR(sum / (32 * 24), means[k][static_cast<size_t>(c)], 2.0)
            << "frame " << indices[k] << " channel " << c;
      }
    }
    const auto first = f["first_frame_rgb"].get<std::vector<int>>();
    ASSERT_EQ(first.size(), frames[0].pixels.size());
    int worst = 0;
    for (size_t p = 0; p < first.size(); ++p)
      worst = std::max(worst, std::abs(first[p] - static_cast<int>(frames[0].pixels[p])));
    EXPECT_LE(worst, 2);
    EXPECT_EQ(video_prompt_text(info, indices,
                                "<fake_token_around_image><global-img><image><fake_token_around_"
                                "image>"),
              f["prompt_seq_1"].get<std::string>());
  }
}

TEST(Video, SamplingMatchesSmolVlmVideoProcessor) {
  const json cases = golden("sampling.json")["cases"];
  ASSERT_GE(cases.size(), 20u);
  for (const json& c : cases) {
    VideoInfo info;
    info.total_frames = c["total_num_frames"];
    info.fps = c["fps"];
    info.duration = c["duration"];
    const VideoSampling sampling{c["sample_fps"], c["max_frames"]};
    const std::vector<int64_t> indices = sample_frame_indices(info, sampling);
    EXPECT_EQ(indices, c["indices"].get<std::vector<int64_t>>()) << c.dump();
    EXPECT_EQ(frame_timestamps(indices, info.fps), c["timestamps"].get<std::vector<double>>());
  }
}

TEST(Video, PromptMatchesSmolVlmProcessor) {
  const json prompts = golden("prompts.json");
  ASSERT_GE(prompts.size(), 20u);
  for (const json& p : prompts) {
    VideoInfo info;
    info.total_frames = p["total_num_frames"];
    info.fps = p["fps"];
    info.duration = p["duration"];
    std::string frame = "<fake_token_around_image><global-img>";
    for (int i = 0; i < p["image_seq_len"].get<int>(); ++i) frame += "<image>";
    frame += "<fake_token_around_image>";
    EXPECT_EQ(video_prompt_text(info, p["indices"].get<std::vector<int64_t>>(), frame),
              p["text"].get<std::string>());
  }
  EXPECT_EQ(timedelta_text(65), "0:01:05");
  EXPECT_EQ(timedelta_text(86400), "1 day, 0:00:00");
  EXPECT_EQ(timedelta_text(2 * 86400 + 3661), "2 days, 1:01:01");
}

TEST(Video, NumberWordsMatchNum2Words) {
  const json words = golden("num2words.json");
  ASSERT_GE(words.size(), 1200u);
  for (const auto& [n, w] : words.items())
    EXPECT_EQ(number_words(std::stoll(n)), w.get<std::string>());
  EXPECT_THROW(number_words(-1), Error);
}

TEST(Video, UnreadableFilesAreNamedErrors) {
  const std::string missing = MINIVLM_SOURCE_DIR "/tests/fixtures/video/missing.mp4";
  EXPECT_THAT([&] { probe_video(missing); },
              ThrowsMessage<Error>(AllOf(HasSubstr(missing), HasSubstr("No such file"))));
  const std::string garbage = temp_file("garbage.mp4", std::string(4096, '\x5a'));
  EXPECT_THAT([&] { probe_video(garbage); },
              ThrowsMessage<Error>(AllOf(HasSubstr(garbage), HasSubstr("not a video"))));
  const std::string cut = temp_file("cut.mp4", file_bytes(kTiny).substr(0, 200));
  EXPECT_THAT(
      [&] {
        decode_video_frames(cut, {0, 29});
      },
      ThrowsMessage<Error>(HasSubstr("video " + cut + ": ")));
  EXPECT_THAT(
      [&] {
        decode_video_frames(kTiny, {0, 30});
      },
      ThrowsMessage<Error>(
          AllOf(HasSubstr(kTiny), HasSubstr("frame 30 requested"), HasSubstr("only 30"))));
  EXPECT_THAT(
      [&] {
        decode_video_frames(kTiny, {3, 3});
      },
      ThrowsMessage<Error>(HasSubstr("ascending and distinct")));
}

// A video through a processor: one tile per sampled frame, the frame prompt per frame, the
// prompt a video's.
TEST(Video, ProcessorMakesOneTilePerFrameAndTheVideoPrompt) {
  VideoProcessor v;
  v.sampling = {1.0, 64};
  v.tile_size = 2;
  int calls = 0;
  v.frame_tile = [&](const RgbImage& f) {
    ++calls;
    EXPECT_EQ(f.width, 32);
    return std::vector<float>(12, static_cast<float>(f.pixels[0]));
  };
  v.frame_prompt = {"<fake_token_around_image><global-img><image><fake_token_around_image>", 1};
  const ProcessedImage p = v.process(kTiny);
  EXPECT_EQ(calls, 6);
  EXPECT_EQ(p.tiles, 6);
  EXPECT_EQ(p.pixels.size(), 6u * 12u);
  EXPECT_TRUE(p.prompt.video);
  EXPECT_EQ(p.prompt.image_tokens, 6);
  EXPECT_EQ(p.prompt.text, golden("sampling.json")["files"][0]["prompt_seq_1"].get<std::string>());
  v.tile_size = 3;
  EXPECT_THAT([&] { v.process(kTiny); }, ThrowsMessage<Error>(HasSubstr("not one tile")));
}

}  // namespace
}  // namespace minivlm
