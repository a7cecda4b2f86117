// `minivlm preprocess`: one image through an image processor (SPEC §2), saved for inspection or
// comparison with other implementations; with --bench, the speed of decoding and preprocessing a
// set of images on the calling thread (scripts/bench/pipeline compares it with Pillow).
#include <chrono>
#include <ctime>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file_check.h"
#include "core/tensor.h"
#include "data/processor.h"
#include "io/safetensors.h"
#include "nn/config.h"
#include "tools/command.h"

namespace minivlm {
namespace {

// Seconds of CPU time the calling thread has used: on a busy machine a pass's wall time counts
// the time other processes held the core; this counts only the work.
double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Wall and thread-CPU seconds of the stages of a pass.
struct Clock {
  double wall = 0, cpu = 0;
  std::chrono::steady_clock::time_point wall0;
  double cpu0 = 0;
  void start() {
    wall0 = std::chrono::steady_clock::now();
    cpu0 = thread_cpu_seconds();
  }
  void stop() {
    wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    cpu += thread_cpu_seconds() - cpu0;
  }
};

std::string json_list(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.6f", i ? ", " : "", v[i]);
    s += buf;
  }
  return s + "]";
}

// --bench: every image's bytes are read first; each of `reps` passes then decodes every image
// (decode_rgb_image) and runs the processor on it, timing the two stages separately. Prints one
// JSON object: the per-pass sums of decode and preprocess seconds (wall, and CPU time of the
// thread), and the tiles produced.
int bench(const std::vector<std::string>& images, const ImageProcessor& processor, int reps,
          bool decode_only) {
  MV_CHECK(!images.empty(), "preprocess --bench: no images (give --image or --list)");
  std::vector<std::string> bytes;
  for (const std::string& path : images)
    bytes.push_back(read_regular_file(path, "image", kMaxImageFileBytes));
  std::vector<double> decode_s, process_s, decode_cpu_s, process_cpu_s;
  int64_t tiles = 0, pixels = 0;
  double checksum = 0;  // keeps the work observable
  for (int r = 0; r < reps; ++r) {
    Clock d, p;
    tiles = pixels = 0;
    for (size_t i = 0; i < bytes.size(); ++i) {
      d.start();
      const RgbImage img = decode_rgb_image(reinterpret_cast<const uint8_t*>(bytes[i].data()),
                                            bytes[i].size(), images[i]);
      d.stop();
      pixels += int64_t{img.width} * img.height;
      if (decode_only) {
        checksum += img.pixels[img.pixels.size() / 2];
        continue;
      }
      p.start();
      const ProcessedImage out = processor.process(img);
      p.stop();
      tiles += out.tiles;
      checksum += out.pixels[out.pixels.size() / 2];
    }
    decode_s.push_back(d.wall);
    process_s.push_back(p.wall);
    decode_cpu_s.push_back(d.cpu);
    process_cpu_s.push_back(p.cpu);
  }
  std::printf(
      "{\"images\": %zu, \"reps\": %d, \"pixels\": %lld, \"tiles\": %lld, \"decode_s\": %s, "
      "\"process_s\": %s, \"decode_cpu_s\": %s, \"process_cpu_s\": %s, \"checksum\": %.6g}\n",
      images.size(), reps, static_cast<long long>(pixels), static_cast<long long>(tiles),
      json_list(decode_s).c_str(), json_list(process_s).c_str(), json_list(decode_cpu_s).c_str(),
      json_list(process_cpu_s).c_str(), checksum);
  return 0;
}

std::vector<std::string> list_file(const std::string& path) {
  require_regular_file(path, "image list");
  std::ifstream in(path);
  MV_CHECK(in, "preprocess: cannot open image list ", path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

}  // namespace

MINIVLM_COMMAND("preprocess",
                "decode an image and write its pixel_values [tiles,3,S,S] f32 as safetensors "
                "(--bench: decode + preprocess speed)") {
  const cli::Args a(args,
                    {{"image", true},
                     {"size", true},
                     {"out", true},
                     {"config", true},
                     {"bench", false},
                     {"list", true},
                     {"reps", true},
                     {"decode_only", false}},
                    "preprocess");
  // The processor: the config's (--config), or the "clip" processor with its default mean and
  // std at --size.
  ModelConfig config;
  if (a.has("config")) {
    config = ModelConfig::from_file(a.get("config"));
  } else {
    const int size = a.get_int("size", 224);
    MV_CHECK(size > 0, "preprocess: --size must be positive, got ", size);
    config.vision.image_size = size;
  }
  const auto processor = ImageProcessor::for_model(config);
  if (a.has("bench")) {
    std::vector<std::string> images = a.get_all("image");
    if (a.has("list"))
      for (std::string& p : list_file(a.get("list"))) images.push_back(std::move(p));
    const int reps = a.get_int("reps", 5);
    MV_CHECK(reps > 0, "preprocess: --reps must be positive, got ", reps);
    return bench(images, *processor, reps, a.has("decode_only"));
  }
  const std::string image = a.get("image"), out = a.get("out");
  const RgbImage img = load_rgb_image(image);
  const ProcessedImage p = processor->process(img);
  const int64_t s = processor->tile_size();
  const Tensor pixels = p.tiles == 1 ? Tensor::from_vector(p.pixels, {3, s, s})
                                     : Tensor::from_vector(p.pixels, {p.tiles, 3, s, s});
  save_safetensors(out, {{"pixel_values", pixels}},
                   {{"source", image},
                    {"source_size", std::to_string(img.width) + "x" + std::to_string(img.height)}});
  const std::string shape = (p.tiles == 1 ? "" : std::to_string(p.tiles) + ", ") + "3, " +
                            std::to_string(s) + ", " + std::to_string(s);
  std::printf("%s: %dx%d -> pixel_values [%s] in %s\n", image.c_str(), img.width, img.height,
              shape.c_str(), out.c_str());
  return 0;
}

}  // namespace minivlm
