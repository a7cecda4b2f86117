// tokenizer.json: load, then encode and decode text (the input itself and a fixed sentence).
#include "core/error.h"
#include "fuzz/fuzz_util.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace minivlm;
  try {
    const Tokenizer tok = Tokenizer::from_json(fuzz::text_of(data, size), "tokenizer.json");
    for (std::string_view text :
         {std::string_view("Hello, world! 12345 <|im_start|>user\n\xe4\xbd\xa0\xe5\xa5\xbd"),
          fuzz::text_of(data, size < 256 ? size : 256)}) {
      const Tokenizer::Encoding e = tok.encode_with_offsets(text);
      if (e.ids.size() != e.starts.size()) __builtin_trap();
      (void)tok.decode(e.ids, true);
      (void)tok.decode(e.ids, false);
    }
  } catch (const Error&) {
  }
  return 0;
}
