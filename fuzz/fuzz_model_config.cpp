// config.json: parse, ModelConfig validation, and the derived values a model is built from.
#include "core/error.h"
#include "core/json_file.h"
#include "fuzz/fuzz_util.h"
#include "nn/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace minivlm;
  try {
    const ModelConfig c =
        ModelConfig::from_json(parse_json(fuzz::text_of(data, size), "fuzz"), "config.json");
    volatile int64_t sink = c.tokens_per_image() + c.projector_in() + c.vision.grid();
    (void)sink;
    (void)ModelConfig::from_json(c.to_json(), "round trip");
  } catch (const Error&) {
  }
  return 0;
}
