// State and option JSON of training: trainer_state.json (what resuming reads), a loader state, and
// a --config option file applied to the default options.
#include "core/error.h"
#include "core/json_file.h"
#include "data/loader.h"
#include "fuzz/fuzz_util.h"
#include "train/checkpoint.h"
#include "train/options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace minivlm;
  const std::string_view text = fuzz::text_of(data, size);
  try {
    (void)parse_trainer_state(text, "trainer_state.json");
  } catch (const Error&) {
  }
  try {
    const nlohmann::json j = parse_json(text, "state");
    try {
      (void)LoaderState::from_json(j);
    } catch (const Error&) {
    }
    TrainOptions opts = default_options(Stage::sft);
    apply_options(opts, j, "options.json");
    (void)opts.to_json().dump();
  } catch (const Error&) {
  }
  return 0;
}
