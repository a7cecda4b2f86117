// The image processor seam: what one decoded image becomes for the model — the pixel tiles its
// vision tower reads and the text its <image> placeholder becomes (each tile one run of N image
// tokens). ImageProcessor::for_model picks the processor registered under the model's vision.type:
//   "clip"    data/processor_clip.cpp: shortest edge → image_size (bicubic), center crop,
//             normalize; one tile (CLIPImageProcessor).
//   "siglip"  data/processor_siglip.cpp: the whole image → image_size² with vision.resample
//             (bilinear or bicubic; no aspect ratio kept, no crop), normalize; one tile
//             (SiglipImageProcessor, Pillow backend).
// Both resize with Pillow's 8-bit arithmetic (data/image_resize.cpp) and normalize as transformers
// does in float32. A new processor (SmolVLM's grid of tiles plus a global image, say) is one file
// that derives from ImageProcessor and adds itself to image_processors().
#pragma once
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

}  // namespace minivlm
