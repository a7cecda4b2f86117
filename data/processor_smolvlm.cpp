// The SmolVLM image processor (vision.type "smolvlm"): transformers' SmolVLMImageProcessorPil
// (the Idefics3 algorithm) and the image prompt of SmolVLMProcessor.
//
// With L = vision.longest_edge and M = vision.image_size (the tile side):
//   1. The image is resized so its longest edge is L (smolvlm_longest_edge_size: the other edge
//      keeps the aspect ratio, truncated, then made even; small images are upscaled). Skipped when
//      L is 0.
//   2. With vision.do_image_splitting, it is resized again to whole tiles: the longer edge up to a
//      multiple of M, the other edge int(longer / aspect) rounded up to a multiple of M (so the
//      aspect ratio is slightly distorted). When that is more than one tile, the tiles are cut
//      row-major (rows × cols) and the global image, the resized image resized to M × M, comes
//      last; a 1 × 1 grid is the one tile itself, rows = cols = 0. Without splitting the image is
//      resized straight to M × M, rows = cols = 0.
//   3. Each tile is float(v · (1/255)) with the product in double, then (x − mean) / std in float32
//      with vision.image_mean and vision.image_std: transformers' rescale and normalize.
// Every resize is Pillow's 8-bit arithmetic with vision.resample (SmolVLM's is "lanczos"), bit for
// bit, each step reading the previous step's uint8 image as transformers' does. Images come from
// load_rgb_image, which composites alpha over white as transformers' convert_to_rgb does before it
// resizes.
//
// Tiles are always whole M × M images: SmolVLM never feeds a partly padded tile. (Its processor
// pads a batch to the most tiles of any image with all-zero frames and a pixel_attention_mask;
// those frames belong to batching, not to an image, and are not produced here.)
//
// The prompt is get_image_prompt_string's, with N = tokens_per_image() copies of image_token
// ("<image>") per tile:
//   split:  for each row r: ("<fake_token_around_image><row_r_col_c>" + N × "<image>" for each
//           column c) + "\n"; then "\n<fake_token_around_image><global-img>" + N × "<image>" +
//           "<fake_token_around_image>"
//   single: "<fake_token_around_image><global-img>" + N × "<image>" + "<fake_token_around_image>"
//
// Video frames (smolvlm_frame_tile): SmolVLMVideoProcessor resizes a frame's longest edge to its
// video size and then to M × M, without splitting, and prompts each frame in the single form. It
// runs on torch tensors; here a frame goes through Pillow's arithmetic with vision.resample, equal
// to SmolVLMImageProcessorPil without splitting at size.longest_edge = vision.video_longest_edge.
// (Against transformers 5.25's SmolVLMVideoProcessor itself, measured on a 640² photo and a 300×90
// crop at 96 → 64²: at most one 8-bit step, 2/255 after normalization, in under 1% of values.)
#include <algorithm>
#include <string>

#include "core/error.h"
#include "data/processor.h"
#include "nn/config.h"

namespace minivlm {

namespace {

constexpr int kMaxImageSize = 4096;  // transformers' MAX_IMAGE_SIZE
const char* const kFakeToken = "<fake_token_around_image>";
const char* const kGlobalToken = "<global-img>";

int round_up(int x, int m) { return (x + m - 1) / m * m; }

RgbImage resize_longest_edge(const RgbImage& img, int longest_edge, Resample resample) {
  if (longest_edge == 0) return img;
  const auto [w, h] = smolvlm_longest_edge_size(img.width, img.height, longest_edge);
  return resize(img, w, h, resample);
}

void check_image(const RgbImage& img, const char* what) {
  MV_CHECK(img.width > 0 && img.height > 0 &&
               img.pixels.size() == static_cast<size_t>(img.width) * img.height * 3,
           what, ": degenerate ", img.width, "x", img.height, " image with ", img.pixels.size(),
           " bytes");
}

void check_config(const ModelConfig& c) {
  MV_CHECK(c.vision.image_size > 0 && c.vision.image_size <= kMaxImageSize,
           "smolvlm image processor: vision.image_size must be in [1, ", kMaxImageSize, "], got ",
           c.vision.image_size);
  MV_CHECK(c.vision.longest_edge >= 0 && c.vision.longest_edge <= kMaxImageSize,
           "smolvlm image processor: vision.longest_edge must be in [0, ", kMaxImageSize, "], got ",
           c.vision.longest_edge);
  MV_CHECK(c.vision.video_longest_edge >= 0 && c.vision.video_longest_edge <= kMaxImageSize,
           "smolvlm image processor: vision.video_longest_edge must be in [0, ", kMaxImageSize,
           "], got ", c.vision.video_longest_edge);
}

class SmolvlmProcessor : public ImageProcessor {
 public:
  explicit SmolvlmProcessor(const ModelConfig& c)
      : ImageProcessor(c.vision.image_size, c.image_token),
        resample_(resample_from_name(c.vision.resample)),
        norm_{c.vision.image_mean, c.vision.image_std},
        longest_edge_(static_cast<int>(c.vision.longest_edge)),
        splitting_(c.vision.do_image_splitting),
        tokens_per_tile_(c.tokens_per_image()) {
    check_config(c);
  }

  ProcessedImage process(const RgbImage& image) const override {
    check_image(image, "smolvlm image processor");
    const int m = static_cast<int>(tile_size());
    const RgbImage resized = resize_longest_edge(image, longest_edge_, resample_);
    if (!splitting_) return single(resize(resized, m, m, resample_));

    // transformers' resize_for_vision_encoder: the aspect ratio in double, int() truncation.
    const double aspect = static_cast<double>(resized.width) / resized.height;
    int w = resized.width, h = resized.height;
    if (w >= h) {
      w = round_up(w, m);
      h = round_up(static_cast<int>(w / aspect), m);
    } else {
      h = round_up(h, m);
      w = round_up(static_cast<int>(h * aspect), m);
    }
    MV_CHECK(w > 0 && h > 0, "smolvlm image processor: a ", image.width, "x", image.height,
             " image has no whole tiles");
    const RgbImage grid = resize(resized, w, h, resample_);
    if (w <= m && h <= m) return single(grid);

    const int rows = h / m, cols = w / m;
    ProcessedImage p;
    p.tiles = int64_t(rows) * cols + 1;
    const size_t tile = size_t{3} * m * m;
    p.pixels.resize(static_cast<size_t>(p.tiles) * tile);
    float* out = p.pixels.data();
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c, out += tile)
        normalize_planar_window(grid, c * m, r * m, m, m, norm_, out);
    const RgbImage global = resize(grid, m, m, resample_);  // the global image, last
    normalize_planar_window(global, 0, 0, m, m, norm_, out);
    p.prompt = smolvlm_image_prompt(rows, cols, tokens_per_tile_, image_token());
    return p;
  }

 private:
  ProcessedImage single(const RgbImage& tile) const {
    return {normalize_planar(tile, norm_), 1,
            smolvlm_image_prompt(0, 0, tokens_per_tile_, image_token())};
  }

  Resample resample_;
  ClipNorm norm_;
  int longest_edge_;
  bool splitting_;
  int64_t tokens_per_tile_;
};

std::shared_ptr<const ImageProcessor> make_smolvlm(const ModelConfig& c) {
  return std::make_shared<SmolvlmProcessor>(c);
}

const bool registered = image_processors().add("smolvlm", make_smolvlm);

}  // namespace

std::array<int, 2> smolvlm_longest_edge_size(int width, int height, int longest_edge) {
  MV_CHECK(width > 0 && height > 0 && longest_edge > 0, "smolvlm_longest_edge_size: invalid ",
           width, "x", height, " to longest edge ", longest_edge);
  // _resize_output_size_rescale_to_max_len (min_len 1)
  double aspect = static_cast<double>(width) / height;
  int w, h;
  if (width >= height) {
    w = longest_edge;
    h = static_cast<int>(w / aspect);
    if (h % 2 != 0) ++h;
  } else {
    h = longest_edge;
    w = static_cast<int>(h * aspect);
    if (w % 2 != 0) ++w;
  }
  h = std::max(h, 1), w = std::max(w, 1);
  // _resize_output_size_scale_below_upper_bound (MAX_IMAGE_SIZE)
  aspect = static_cast<double>(w) / h;
  if (w >= h && w > kMaxImageSize) {
    w = kMaxImageSize;
    h = static_cast<int>(w / aspect);
  } else if (h > w && h > kMaxImageSize) {
    h = kMaxImageSize;
    w = static_cast<int>(h * aspect);
  }
  return {std::max(w, 1), std::max(h, 1)};
}

ImagePrompt smolvlm_image_prompt(int64_t rows, int64_t cols, int64_t tokens_per_tile,
                                 const std::string& image_token) {
  const ImagePrompt run = image_run(image_token, tokens_per_tile);
  const std::string global = std::string(kFakeToken) + kGlobalToken + run.text + kFakeToken;
  if (rows == 0 && cols == 0) return {global, tokens_per_tile};
  MV_CHECK(rows > 0 && cols > 0, "smolvlm_image_prompt: invalid grid ", rows, "x", cols);
  ImagePrompt p{{}, (rows * cols + 1) * tokens_per_tile};
  for (int64_t r = 1; r <= rows; ++r) {
    for (int64_t c = 1; c <= cols; ++c)
      p.text += std::string(kFakeToken) + "<row_" + std::to_string(r) + "_col_" +
                std::to_string(c) + ">" + run.text;
    p.text += "\n";
  }
  p.text += "\n" + global;
  return p;
}

ProcessedImage smolvlm_frame_tile(const RgbImage& frame, const ModelConfig& config) {
  check_config(config);
  check_image(frame, "smolvlm_frame_tile");
  const Resample resample = resample_from_name(config.vision.resample);
  const int m = static_cast<int>(config.vision.image_size);
  const RgbImage resized =
      resize_longest_edge(frame, static_cast<int>(config.vision.video_longest_edge), resample);
  return {normalize_planar(resize(resized, m, m, resample),
                           {config.vision.image_mean, config.vision.image_std}),
          1, smolvlm_image_prompt(0, 0, config.tokens_per_image(), config.image_token)};
}

}  // namespace minivlm
