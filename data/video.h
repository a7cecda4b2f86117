// Videos, SmolVLM2's way (transformers' SmolVLMVideoProcessor and SmolVLMProcessor): decoding with
// FFmpeg's libraries, frame sampling, and what a video becomes for the model — one tile per sampled
// frame and the text its <video> placeholder becomes.
//
// Metadata are those of transformers' PyAV reader (read_video_pyav): the frame count is the video
// stream's nb_frames, fps its average frame rate, duration = frames / fps. Where the container
// does not store nb_frames (some MKV/WebM files), the frames are counted by decoding them all,
// where PyAV would report 0 frames; where it has no average frame rate, the stream's r_frame_rate
// is taken. Frames are numbered in presentation order from 0, as the decoder returns them.
//
// A video becomes (process_video):
//   indices    sample_frame_indices (SmolVLMVideoProcessor.sample_frames, skip_secs 1)
//   tiles      one per sampled frame: the frame through a FrameToTile (SmolVLM: longest edge →
//              vision.video_longest_edge, then → image_size², one normalised tile)
//   prompt     video_prompt_text: SmolVLMProcessor.replace_video_token's text, each frame's
//              "\nFrame from MM:SS:" followed by the single-tile image prompt
// as one ImagePrompt with `video` set (text/chat.h), so a video travels through ProcessedImages,
// the chat renderer and the model as one "image" of N tiles.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/processor.h"
#include "text/chat.h"

namespace minivlm {

struct ModelConfig;

struct VideoInfo {
  int64_t total_frames = 0;
  double fps = 0;       // average frame rate
  double duration = 0;  // total_frames / fps, seconds
  int width = 0, height = 0;
};

// Limits checked from a video's metadata before any frame is decoded: frames of more pixels than
// max_image_pixels() (data/image.h), more than kMaxVideoFrames frames, a frame rate above
// kMaxVideoFps. A container that stores no frame count is counted by decoding, up to the limit.
inline constexpr int64_t kMaxVideoFrames = int64_t{1} << 24;
inline constexpr double kMaxVideoFps = 1e6;

// The metadata of a video file. Throws minivlm::Error naming the file and the reason (missing or
// not a regular file, not a format FFmpeg reads, no video stream, no decoder, no frame rate, no
// frames, a limit above passed). The demuxer opens no file but this one.
VideoInfo probe_video(const std::string& path);

// The RGB frames at `indices` (ascending, distinct), in that order. Throws minivlm::Error naming
// the file and the reason (as probe_video, a decoding error, an index past the last frame).
std::vector<RgbImage> decode_video_frames(const std::string& path,
                                          const std::vector<int64_t>& indices);

// SmolVLMVideoProcessor's sampling parameters: its fps, num_frames (max_frames) and skip_secs.
struct VideoSampling {
  double fps = 1.0;
  int64_t max_frames = 64;
  double skip_secs = 1.0;
};

// SmolVLMVideoProcessor.sample_frames, exactly: n = min(round(fps · duration), max_frames), at
// least 1 (round half to even); start, end = 0, total − 1, or, when duration − 2·skip_secs >
// max_frames · fps, int(skip_secs · video fps) and int(total − skip_secs · video fps) clamped to
// the last frame; back to 0, total − 1 when start ≥ end; then unique(linspace(start, end, n)
// truncated to integers), numpy's linspace arithmetic.
std::vector<int64_t> sample_frame_indices(const VideoInfo& info, const VideoSampling& sampling);

// Seconds of each frame: index / fps (VideoMetadata.timestamps).
std::vector<double> frame_timestamps(const std::vector<int64_t>& indices, double fps);

// English words of a count as num2words writes them ("sixty-four", "one hundred and one",
// "one thousand, two hundred"). Throws for n < 0 or n ≥ 10^12.
std::string number_words(int64_t n);

// Python's str(timedelta(seconds=s)): "H:MM:SS", with "D day(s), " before it from one day on.
std::string timedelta_text(int64_t seconds);

// The text SmolVLMProcessor puts for a <video>: "You are provided the following series of {N in
// words} frames from a {timedelta(int(duration))} [H:MM:SS] video.\n", then per frame
// "\nFrame from {MM:SS}:" + frame_prompt (MM = int(t // 60), SS = int(t % 60), each at least two
// digits), then "\n\n".
std::string video_prompt_text(const VideoInfo& info, const std::vector<int64_t>& indices,
                              const std::string& frame_prompt);

// One frame → one tile [3, S, S] of the model's vision tower.
using FrameToTile = std::function<std::vector<float>(const RgbImage& frame)>;

// How a model turns videos into tiles and text.
struct VideoProcessor {
  VideoSampling sampling;
  FrameToTile frame_tile;
  ImagePrompt frame_prompt;  // the text of one frame's tile (one image token run, or SmolVLM's
                             // single-image form)
  int64_t tile_size = 0;

  // The video at `path`: its sampled frames' tiles and its prompt (ImagePrompt::video set).
  // Throws minivlm::Error naming the file and the reason when it cannot be read.
  ProcessedImage process(const std::string& path) const;

  // The video processor of a model: sampling from vision.video_fps and vision.video_max_frames,
  // frames through `images` (the model's image processor): each frame is processed as an image,
  // which must give one tile, whose prompt is the frame prompt. SmolVLM's image processor splits
  // images into several tiles; its frames go through its own frame-to-tile step (resize to
  // vision.video_longest_edge, then to image_size², no splitting), which is that processor's to
  // give: until it does, a SmolVLM model's frames are refused here with an error saying so.
  static VideoProcessor for_model(const ModelConfig& config,
                                  std::shared_ptr<const ImageProcessor> images);
};

// Images and videos in the order the user messages' placeholders take them (text/chat.h): the
// k-th placeholder takes the next image for <image>, the next video for <video>; when the messages
// hold no placeholder, the images then the videos. Media that no placeholder takes are appended in
// that order, so that rendering reports the mismatch.
ProcessedImages in_placeholder_order(const std::vector<Message>& messages,
                                     std::vector<ProcessedImage> images,
                                     std::vector<ProcessedImage> videos);

}  // namespace minivlm
