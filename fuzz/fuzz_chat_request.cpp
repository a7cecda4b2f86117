// `minivlm serve`'s request bodies: the input is a chat-completions body, checked field by field
// (images in data URLs decoded under small limits), then rendered in the shipped tokenizer's chat
// template as the server renders it. Only an ApiError (an HTTP error for the client) or a
// minivlm::Error from rendering may come out.
#include "core/error.h"
#include "fuzz/fuzz_util.h"
#include "infer/serve/api.h"
#include "text/chat.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace minivlm;
  static const Tokenizer tok =
      Tokenizer::from_file(MINIVLM_SOURCE_DIR "/data/tokenizer/tokenizer.json");
  serve::RequestLimits limits;
  limits.max_image_bytes = 1 << 16;
  limits.max_image_pixels = 1 << 16;
  limits.max_images = 4;
  try {
    const serve::ChatRequest r = serve::parse_chat_request(std::string(fuzz::text_of(data, size)),
                                                           "model", "<image>\n", limits);
    if (r.messages.empty()) __builtin_trap();
    for (const RgbImage& img : r.images)
      if (img.width <= 0 || img.height <= 0 ||
          img.pixels.size() != static_cast<size_t>(img.width) * img.height * 3)
        __builtin_trap();
    std::vector<ImagePrompt> prompts(r.images.size(), image_run("<|image_pad|>", 4));
    (void)encode_generation_prompt(tok, r.messages, prompts, "<|image_pad|>");
  } catch (const serve::ApiError& e) {
    if (e.status < 400 || e.status >= 500) __builtin_trap();
  } catch (const Error&) {
  }
  return 0;
}
