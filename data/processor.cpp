#include "data/processor.h"

#include "nn/config.h"

namespace minivlm {

int64_t ProcessedImages::tiles() const {
  int64_t n = 0;
  for (int64_t t : tiles_per_image) n += t;
  return n;
}

void ProcessedImages::add(ProcessedImage image) {
  pixels.insert(pixels.end(), image.pixels.begin(), image.pixels.end());
  tiles_per_image.push_back(image.tiles);
  prompts.push_back(std::move(image.prompt));
}

std::shared_ptr<const ImageProcessor> ImageProcessor::for_model(const ModelConfig& config) {
  return image_processors().get(config.vision.type)(config);
}

Registry<ImageProcessorFactory>& image_processors() {
  static Registry<ImageProcessorFactory> table("image processor for vision.type");
  return table;
}

}  // namespace minivlm
