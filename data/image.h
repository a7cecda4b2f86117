// Image loading, resizing, and CLIP and SigLIP preprocessing (SPEC §2).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace minivlm {

// 8-bit RGB, row-major [height][width][3].
struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;
};

// Images of more pixels than the limit (width × height, read from the file's header) are refused
// before they are decoded. The default is 2 × Pillow's MAX_IMAGE_PIXELS (89,478,485), the size at
// which Pillow raises DecompressionBombError; the environment variable MINIVLM_MAX_IMAGE_PIXELS
// sets another (a positive integer).
inline constexpr int64_t kDefaultMaxImagePixels = 2 * int64_t{89'478'485};
// The limit in force (the variable is read at each call; a value that is not a positive integer is
// an error naming it).
int64_t max_image_pixels();
// Image files larger than this are refused before they are read.
inline constexpr int64_t kMaxImageFileBytes = int64_t{1} << 30;

// Decodes JPEG/PNG/BMP/GIF (first frame) to RGB as Pillow + transformers' convert_to_rgb do: alpha
// (or a transparency key) is composited over white with Image.alpha_composite's arithmetic, which
// for every (c, a) equals round((c·a + 255·(255 − a)) / 255); JPEG is decoded by libjpeg-turbo
// as Pillow decodes it, so its pixels are Pillow's. Throws minivlm::Error naming the path and the
// reason (missing file, not a regular file, corrupt or unknown data, a JPEG whose data ends before
// the image, a progressive JPEG of more than 500 scans, more than max_image_pixels() pixels). The
// decoder's memory is bounded by the size the header gives: data that would decode to more is an
// error too.
RgbImage load_rgb_image(const std::string& path);
RgbImage decode_rgb_image(const uint8_t* bytes, size_t n, const std::string& what);
// (width, height) from an image file's header alone, nothing decoded. Throws minivlm::Error naming
// `what` when the data is no image of a supported format.
std::pair<int, int> image_header_size(const uint8_t* bytes, size_t n, const std::string& what);

// PNG file bytes of an image (stb_image_write).
std::string encode_png(const RgbImage& img);

// Pillow's resampling filters (Image.Resampling.BILINEAR = 2, BICUBIC = 3, LANCZOS = 1).
enum class Resample { bilinear, bicubic, lanczos };
// "bilinear", "bicubic" or "lanczos" (vision.resample); throws minivlm::Error naming anything else.
Resample resample_from_name(const std::string& name);
const char* resample_name(Resample resample);

// Pillow-compatible resize (antialiased when shrinking), bit-exact with Image.resize((w, h),
// resample) without reducing_gap; resizing to the same size returns an exact copy.
RgbImage resize(const RgbImage& img, int out_width, int out_height, Resample resample);
RgbImage resize_bicubic(const RgbImage& img, int out_width, int out_height);
// Shortest edge → size, keeping the aspect ratio as CLIPImageProcessor does: the long edge becomes
// int(size · long / short) (truncated). Returns {width, height}.
std::array<int, 2> shortest_edge_size(int width, int height, int size);
RgbImage resize_shortest_edge(const RgbImage& img, int size);
// size×size window with top = floor((H − size) / 2), left = floor((W − size) / 2), as transformers'
// center_crop: where the image is smaller than the window the outside is zero (black) padding.
RgbImage center_crop(const RgbImage& img, int size);

struct ClipNorm {
  std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};
};
// x/255 → (x − mean)/std of every pixel; returns [3, height, width] planar. Each value equals
// transformers' float32 arithmetic (rescale, then normalize): float(v · (1/255)) with the product
// in double, then (x − mean) / std in float.
std::vector<float> normalize_planar(const RgbImage& img, const ClipNorm& norm);
// The same for the width × height window of `img` at column x0, row y0 (inside the image), written
// to out[0 .. 3·width·height) as [3, height, width].
void normalize_planar_window(const RgbImage& img, int x0, int y0, int width, int height,
                             const ClipNorm& norm, float* out);
// resize_shortest_edge → center_crop → normalize_planar; returns [3, size, size] planar.
std::vector<float> clip_preprocess(const RgbImage& img, int size, const ClipNorm& norm = {});
// SiglipImageProcessor (Pillow backend): resize(img, size, size, resample) of the whole image (no
// aspect ratio kept, no crop) → normalize_planar; returns [3, size, size] planar.
std::vector<float> siglip_preprocess(const RgbImage& img, int size, Resample resample,
                                     const ClipNorm& norm);

}  // namespace minivlm
