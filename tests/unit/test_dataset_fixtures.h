// Shared fixtures of the dataset and loader tests: a scratch directory, small generated PNGs, JSONL
// writing, the real MiniMind tokenizer and a small sample format.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "data/dataset.h"
#include "data/image.h"
#include "nn/config.h"

namespace minivlm::testing_data {

// The MiniMind tokenizer with the ChatML template (SPEC §3) that these tests' expectations are
// written in, not the MiniMind-3 template of the tokenizer_config.json beside it.
inline const Tokenizer& minimind() {
  static const Tokenizer tok = [] {
    Tokenizer t = Tokenizer::from_file(MINIVLM_SOURCE_DIR "/data/tokenizer/tokenizer.json");
    t.set_chat_template(ChatTemplate::chatml);
    return t;
  }();
  return tok;
}

// A CLIP model of 16×16 images and 4 tokens per image ((16 / 4 / 2)²): small enough to make
// hundreds of samples per test.
inline ModelConfig small_model() {
  ModelConfig c;
  c.vision.image_size = 16;
  c.vision.patch_size = 4;
  return c;
}

inline SampleFormat small_format(int64_t max_seq_len = 256) {
  return SampleFormat::for_model(small_model(), max_seq_len);
}

// A fresh directory under the system temp dir, removed with everything in it.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "minivlm_data_XXXXXX").string();
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    path_ = tmpl;
    std::filesystem::create_directory(path_ / "images");
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string images() const { return (path_ / "images").string(); }
  std::string image(const std::string& name) const { return (path_ / "images" / name).string(); }

 private:
  std::filesystem::path path_;
};

// The message of the minivlm::Error `f` throws; "" when it throws nothing. Any other exception
// escapes and fails the test.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  ASSERT_TRUE(out.good()) << path;
}

// A w×h RGB PNG whose pixels are a function of (x, y, seed), so images differ from one another.
inline void write_png(const std::string& path, int w, int h, int seed) {
  RgbImage img;
  img.width = w;
  img.height = h;
  img.pixels.resize(static_cast<size_t>(w * h * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        img.pixels[static_cast<size_t>((y * w + x) * 3 + c)] =
            static_cast<uint8_t>((x * 37 + y * 11 + c * 80 + seed * 53) % 256);
  write_file(path, encode_png(img));
}

// One JSONL record: a user question (with `user_prefix` before it) and an assistant answer.
inline std::string record(const std::string& question, const std::string& answer,
                          const std::string& image_json = "", const std::string& user_prefix = "") {
  std::string r = R"({"conversations": [{"role": "user", "content": ")" + user_prefix + question +
                  R"("}, {"role": "assistant", "content": ")" + answer + R"("}])";
  if (!image_json.empty()) r += R"(, "image": )" + image_json;
  return r + "}";
}

// A sample of `ids` (labels as given) whose images are `images` tiles of 3·2·2 floats starting at
// base, base + 1, ...
inline Sample make_sample(std::vector<int32_t> ids, std::vector<uint8_t> labels, int images,
                          float base) {
  Sample s;
  s.ids = std::move(ids);
  s.labels = std::move(labels);
  s.num_images = images;
  s.tiles_per_image.assign(static_cast<size_t>(images), 1);
  for (int k = 0; k < images * 3 * 2 * 2; ++k) s.pixels.push_back(base + static_cast<float>(k));
  return s;
}

}  // namespace minivlm::testing_data
