// JSONL datasets: the input is a dataset file; every record is read as a training sample (parse,
// chat rendering, encoding with the shipped tokenizer) and as a generation prompt, with a tiny
// model config. Records with images are refused (no images directory), as in a text-only run.
#include "core/error.h"
#include "data/dataset.h"
#include "fuzz/fuzz_util.h"
#include "nn/config.h"
#include "text/tokenizer.h"

namespace {
const minivlm::Tokenizer& shipped() {
  static const minivlm::Tokenizer tok =
      minivlm::Tokenizer::from_file(MINIVLM_SOURCE_DIR "/data/tokenizer/tokenizer.json");
  return tok;
}
const minivlm::SampleFormat& tiny_format() {
  static const minivlm::SampleFormat format = [] {
    minivlm::ModelConfig c;
    c.vision.image_size = 16;
    c.vision.patch_size = 4;
    return minivlm::SampleFormat::for_model(c, 64);
  }();
  return format;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace minivlm;
  const std::string& path = fuzz::write_scratch(data, size, "jsonl");
  try {
    const Dataset ds(path, "", shipped(), tiny_format());
    for (size_t i = 0; i < ds.size() && i < 64; ++i) {
      const SampleResult r = ds.load(i);
      if (r.sample.has_value() == !r.skip_reason.empty()) __builtin_trap();
      if (r.sample && r.sample->ids.size() != r.sample->labels.size()) __builtin_trap();
      (void)ds.load_prompt(i);
    }
  } catch (const Error&) {
  }
  return 0;
}
