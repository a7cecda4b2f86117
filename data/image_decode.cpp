// Image decoding (SPEC §2): libjpeg-turbo (TurboJPEG) for JPEG, as Pillow decodes it; stb_image for
// PNG/BMP/GIF, CMYK JPEG and every header; alpha composited over white.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <turbojpeg.h>

#include "core/error.h"
#include "core/file_check.h"
#include "data/image.h"

// stb_image allocates through these: each decode caps a single allocation at what the image's
// header size can need (StbAllocLimit), so a stream whose data inflates far beyond its
// stated size (a zlib bomb in a small PNG) fails cleanly instead of taking gigabytes.
namespace minivlm {
namespace {
thread_local size_t stb_alloc_limit = 0;  // 0: no cap (outside a decode)
void* stb_malloc(size_t n) {
  return stb_alloc_limit != 0 && n > stb_alloc_limit ? nullptr : std::malloc(n);
}
void* stb_realloc(void* p, size_t n) {
  return stb_alloc_limit != 0 && n > stb_alloc_limit ? nullptr : std::realloc(p, n);
}
}  // namespace
}  // namespace minivlm
#define STBI_MALLOC(sz) ::minivlm::stb_malloc(sz)
#define STBI_REALLOC(p, newsz) ::minivlm::stb_realloc(p, newsz)
#define STBI_FREE(p) std::free(p)

#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_NO_STDIO
#define STB_IMAGE_IMPLEMENTATION
#pragma GCC diagnostic push
#if defined(__clang__)
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#endif
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#include <stb_image.h>
#pragma GCC diagnostic pop

namespace minivlm {
namespace {

// stb_image's reasons are terse ("outofdata", "no SOF"), so say what they mean.
constexpr const char* kCorrupt = ": corrupt, truncated or unsupported data (";

// Pillow's Image.alpha_composite of the image over an opaque white background, then convert("RGB")
// (what transformers' convert_to_rgb does): Pillow's integer formula reduces, for every (c, a), to
// round((c·a + 255·(255 − a)) / 255).
uint8_t over_white(uint8_t c, uint8_t a) {
  return static_cast<uint8_t>((c * a + 255 * (255 - a) + 127) / 255);
}

RgbImage rgb_from_rgba(const uint8_t* rgba, int width, int height) {
  RgbImage img{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
  const size_t n = static_cast<size_t>(width) * height;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = rgba + 4 * i;
    uint8_t* q = img.pixels.data() + 3 * i;
    if (p[3] == 255) {
      q[0] = p[0], q[1] = p[1], q[2] = p[2];
    } else {
      q[0] = over_white(p[0], p[3]), q[1] = over_white(p[1], p[3]), q[2] = over_white(p[2], p[3]);
    }
  }
  return img;
}

RgbImage decode_with_stb(const uint8_t* bytes, int n, const std::string& what) {
  int width = 0, height = 0, channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> rgba(
      stbi_load_from_memory(bytes, n, &width, &height, &channels, 4), stbi_image_free);
  MV_CHECK(rgba != nullptr, "cannot decode image ", what, kCorrupt, stbi_failure_reason(), ")");
  return rgb_from_rgba(rgba.get(), width, height);
}

// One TurboJPEG decompressor per thread, made on first use (the loader decodes on several).
tjhandle turbojpeg_decompressor() {
  struct Handle {
    tjhandle h = tjInitDecompress();
    ~Handle() {
      if (h != nullptr) tjDestroy(h);
    }
  };
  thread_local Handle handle;
  MV_CHECK(handle.h != nullptr, "cannot start the JPEG decoder: ", tjGetErrorStr2(nullptr));
  return handle.h;
}

// libjpeg-turbo through its TurboJPEG API, with libjpeg's defaults as Pillow uses them: the
// accurate integer IDCT, fancy upsampling, libjpeg's YCbCr→RGB (gray replicated to RGB; a
// 3-component file is YCbCr or RGB as its JFIF / Adobe markers say). At most 500 progressive
// scans (TJFLAG_LIMITSCANS: a few kilobytes of scans could otherwise take minutes). Warnings
// (corrupt entropy-coded data, which libjpeg conceals) leave a decoded image, as in Pillow, except
// data ending before the image does, which Pillow refuses as truncated.
RgbImage decode_jpeg(const uint8_t* bytes, size_t n, int width, int height,
                     const std::string& what) {
  tjhandle tj = turbojpeg_decompressor();
  const auto len = static_cast<unsigned long>(n);
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  MV_CHECK(tjDecompressHeader3(tj, bytes, len, &w, &h, &subsamp, &colorspace) == 0,
           "cannot decode image ", what, ": corrupt or unsupported JPEG (", tjGetErrorStr2(tj),
           ")");
  MV_CHECK(w == width && h == height, "cannot decode image ", what, ": its JPEG header gives ",
           width, "x", height, " and then ", w, "x", h);
  // CMYK / YCCK: Pillow converts those with its own formulas; stb's are close but not identical.
  if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK)
    return decode_with_stb(bytes, static_cast<int>(n), what);
  RgbImage img{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
  if (tjDecompress2(tj, bytes, len, img.pixels.data(), w, 0, h, TJPF_RGB,
                    TJFLAG_ACCURATEDCT | TJFLAG_LIMITSCANS) != 0) {
    const std::string reason = tjGetErrorStr2(tj);
    MV_CHECK(tjGetErrorCode(tj) == TJERR_WARNING, "cannot decode image ", what,
             ": corrupt or unsupported JPEG (", reason, ")");
    MV_CHECK(reason.find("Premature end") == std::string::npos, "cannot decode image ", what,
             ": truncated JPEG (", reason, ")");
  }
  return img;
}

// stb_image 2.27 (Debian 12's) builds a JPEG Huffman table without checking that the 16 code
// counts of its DHT segment sum to at most 256, and writes past the table when they do (fixed
// upstream in 2.28). So the file's segments are walked first as stb reads them — markers after
// fill bytes, lengths, entropy-coded data after each start of scan up to the next marker that is
// not a restart, the end at EOI — and every table of every DHT segment is checked. Where stb would
// part from this walk it stops with an error of its own.
void check_jpeg_huffman_tables(const uint8_t* b, size_t n, const std::string& what) {
  // stb takes anything starting with FF...FF D8 for a JPEG.
  size_t soi = 0;
  while (soi < n && b[soi] == 0xFF) ++soi;
  if (soi == 0 || soi >= n || b[soi] != 0xD8) return;
  const auto byte = [&](size_t k) -> unsigned { return k < n ? b[k] : 0; };  // stb reads 0 at EOF
  for (size_t i = soi + 1; i < n;) {
    if (b[i] != 0xFF) {  // entropy-coded data, or padding stb scans past
      ++i;
      continue;
    }
    size_t j = i;
    while (j < n && b[j] == 0xFF) ++j;
    if (j >= n) return;
    const uint8_t m = b[j];
    if (m == 0xD9) return;  // end of image
    if (m == 0x00 || m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) {
      i = j + 1;  // a stuffed byte, or a marker without a length
      continue;
    }
    const size_t len = byte(j + 1) << 8 | byte(j + 2);
    if (m == 0xC4) {
      // As stb reads it: tables of (class/id, 16 counts, the values) while any length is left.
      int64_t left = static_cast<int64_t>(len) - 2;
      for (size_t at = j + 3; left > 0 && at < n;) {
        unsigned codes = 0;
        for (size_t k = 0; k < 16; ++k) codes += byte(at + 1 + k);
        MV_CHECK(codes <= 256, "cannot decode image ", what, ": corrupt JPEG (a Huffman table of ",
                 codes, " codes, at most 256 exist)");
        left -= 17 + static_cast<int64_t>(codes);
        at += 17 + codes;
      }
    }
    i = j + 1 + std::max<size_t>(len, 2);
  }
}

// Sets the allocation cap of stb_image for one decode.
class StbAllocLimit {
 public:
  explicit StbAllocLimit(size_t limit) { stb_alloc_limit = limit; }
  ~StbAllocLimit() { stb_alloc_limit = 0; }
  StbAllocLimit(const StbAllocLimit&) = delete;
  StbAllocLimit& operator=(const StbAllocLimit&) = delete;
};

}  // namespace

int64_t max_image_pixels() {
  const char* v = std::getenv("MINIVLM_MAX_IMAGE_PIXELS");
  if (v == nullptr || *v == '\0') return kDefaultMaxImagePixels;
  errno = 0;
  char* end = nullptr;
  const long long n = std::strtoll(v, &end, 10);
  MV_CHECK(errno == 0 && end != v && *end == '\0' && n > 0, "MINIVLM_MAX_IMAGE_PIXELS='", v,
           "' is not a positive integer");
  return n;
}

std::pair<int, int> image_header_size(const uint8_t* bytes, size_t n, const std::string& what) {
  MV_CHECK(n > 0, "cannot decode image ", what, ": the file is empty");
  MV_CHECK(n <= static_cast<size_t>(std::numeric_limits<int>::max()), "cannot decode image ", what,
           ": ", n, " bytes is too large");
  int width = 0, height = 0, channels = 0;
  {
    StbAllocLimit limit(size_t{1} << 20);
    MV_CHECK(stbi_info_from_memory(bytes, static_cast<int>(n), &width, &height, &channels) == 1,
             "cannot decode image ", what, kCorrupt, stbi_failure_reason(), ")");
  }
  MV_CHECK(width > 0 && height > 0, "cannot decode image ", what, ": its header gives the size ",
           width, "x", height);
  return {width, height};
}

RgbImage decode_rgb_image(const uint8_t* bytes, size_t n, const std::string& what) {
  MV_CHECK(n > 0, "cannot decode image ", what, ": the file is empty");
  MV_CHECK(n <= static_cast<size_t>(std::numeric_limits<int>::max()), "cannot decode image ", what,
           ": ", n, " bytes is too large");
  const int len = static_cast<int>(n);
  const bool is_jpeg = n >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
  check_jpeg_huffman_tables(bytes, n, what);
  // The size from the header, before anything is decoded.
  const auto [width, height] = image_header_size(bytes, n, what);
  const int64_t pixels = static_cast<int64_t>(width) * height;
  const int64_t limit = max_image_pixels();
  MV_CHECK(pixels <= limit, "image ", what, " is ", width, "x", height, " = ", pixels,
           " pixels, more than the limit of ", limit,
           " (a decompression bomb?). HINT: set MINIVLM_MAX_IMAGE_PIXELS to allow larger images");
  // The most one buffer of a decode needs: 16-bit RGBA samples of every pixel, JPEG components
  // padded to whole MCUs (up to 4x4 blocks of 8 pixels beyond each edge), and a PNG row filter
  // byte per row; twice that for the zlib output buffer, which grows by doubling.
  const size_t cap =
      2 * (static_cast<size_t>(width) + 64) * (static_cast<size_t>(height) + 64) * 8 +
      (size_t{1} << 20);
  StbAllocLimit alloc_limit(cap);
  return is_jpeg ? decode_jpeg(bytes, n, width, height, what) : decode_with_stb(bytes, len, what);
}

RgbImage load_rgb_image(const std::string& path) {
  const std::string bytes = read_regular_file(path, "image", kMaxImageFileBytes);
  return decode_rgb_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
}

}  // namespace minivlm
