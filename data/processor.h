// The image processor seam: what one decoded image becomes for the model — the pixel tiles its
// vision tower reads and the text its <image> placeholder becomes (each tile one run of N image
// tokens). ImageProcessor::for_model picks the processor registered under the model's vision.type:
//   "clip"    data/processor_clip.cpp: shortest edge → image_size (bicubic), center crop,
//             normalize; one tile (CLIPImageProcessor).
//   "siglip"  data/processor_siglip.cpp: the whole image → image_size² with vision.resample
//             (bilinear, bicubic or lanczos; no aspect ratio kept, no crop), normalize; one tile
//             (SiglipImageProcessor, Pillow backend).
//   "smolvlm" data/processor_smolvlm.cpp: longest edge → vision.longest_edge, then a row-major grid
//             of image_size² tiles plus the global image last (vision.do_image_splitting) or one
//             image_size² tile, each tile one run of N image tokens framed by SmolVLM's
//             <fake_token_around_image>, <row_r_col_c> and <global-img> text
//             (SmolVLMImageProcessorPil and SmolVLMProcessor).
// All resize with Pillow's 8-bit arithmetic (data/image_resize.cpp) and normalize as transformers
// does in float32. A new processor is one file that derives from ImageProcessor and adds itself to
// image_processors().
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/registry.h"
#include "data/image.h"
#include "text/chat.h"

namespace minivlm {

struct ModelConfig;

struct ProcessedImage {
  std::vector<float> pixels;  // [tiles, 3, S, S]
  int64_t tiles = 0;
  ImagePrompt prompt;  // what its <image> placeholder becomes: `tiles` runs of N image tokens
};

// The processed images of one sample or conversation, in order.
struct ProcessedImages {
  std::vector<float> pixels;             // [tiles, 3, S, S]: every tile of every image
  std::vector<int64_t> tiles_per_image;  // [images]
  std::vector<ImagePrompt> prompts;      // [images]

  int64_t count() const { return static_cast<int64_t>(tiles_per_image.size()); }
  int64_t tiles() const;
  void add(ProcessedImage image);
};

class ImageProcessor {
 public:
  virtual ~ImageProcessor() = default;

  // The tiles of `image` and the text of its placeholder. Throws minivlm::Error naming the
  // problem (a degenerate image).
  virtual ProcessedImage process(const RgbImage& image) const = 0;

  int64_t tile_size() const { return tile_size_; }  // S: tiles are [3, S, S]
  const std::string& image_token() const { return image_token_; }

  // The processor registered under config.vision.type, set up from the config. Throws naming
  // vision.type and the types that have a processor when there is none.
  static std::shared_ptr<const ImageProcessor> for_model(const ModelConfig& config);

 protected:
  ImageProcessor(int64_t tile_size, std::string image_token)
      : tile_size_(tile_size), image_token_(std::move(image_token)) {}

 private:
  int64_t tile_size_;
  std::string image_token_;
};

// The processors by the vision.type whose images they prepare; a processor's file adds its own at
// start-up:
//   const bool registered = image_processors().add("clip", make);
using ImageProcessorFactory = std::shared_ptr<const ImageProcessor> (*)(const ModelConfig& config);
Registry<ImageProcessorFactory>& image_processors();

// SmolVLM's pieces (data/processor_smolvlm.cpp), for the video path and tests.
//
// {width, height} of an image whose longest edge is resized to `longest_edge`, as transformers'
// SmolVLM get_resize_output_image_size: the other edge int(longest_edge · short / long) with the
// aspect ratio in double, made even by adding one, at least 1; then capped at 4096 the same way.
std::array<int, 2> smolvlm_longest_edge_size(int width, int height, int longest_edge);
// The text an image of `rows` × `cols` tiles (0 × 0: one tile, not split) becomes, with
// `tokens_per_tile` copies of `image_token` per tile, as SmolVLMProcessor's
// get_image_prompt_string.
ImagePrompt smolvlm_image_prompt(int64_t rows, int64_t cols, int64_t tokens_per_tile,
                                 const std::string& image_token);
// One video frame as one tile, as SmolVLM's video processor shapes a frame: longest edge →
// config.vision.video_longest_edge (skipped when 0), then straight to image_size²
// (config.vision.resample, Pillow's arithmetic), normalized; the prompt is the single-image form
// (smolvlm_image_prompt(0, 0, …)).
ProcessedImage smolvlm_frame_tile(const RgbImage& frame, const ModelConfig& config);

}  // namespace minivlm
