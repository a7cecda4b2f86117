// infer (SPEC §6): answers a prompt about zero or more images and videos (--image PATH, --video
// PATH, each repeatable; without placeholders in the prompt they go before it, images first),
// streaming the reply to stdout as it
// is generated; tokens/s for prefill and decode go to stderr. --decode-dtype bf16|i8|f32 picks
// the element type of the weights each decoded token reads, --decode-threads auto|N the threads
// that read them (both for the CPU decoder); --device cuda|cuda-emu computes on the CUDA back-end,
// in bf16 (weights, activations, KV cache) by default or in fp32 with --decode-dtype f32.
// --interactive keeps a chat history;
// "/image PATH" and "/video PATH" attach an image or a video to the next message, "/reset" starts
// over, "/quit" ends.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "core/args.h"
#include "core/process_env.h"
#include "data/processor.h"
#include "data/video.h"
#include "infer/device_model.h"
#include "infer/generate.h"
#include "infer/utf8_stream.h"
#include "io/model_io.h"
#include "text/chat.h"
#include "text/tokenizer.h"

namespace minivlm {
namespace {

struct Chat {
  const LoadedModel& m;
  std::shared_ptr<const ImageProcessor> processor;
  GenerationOptions gen;
  std::vector<Message> messages;
  ProcessedImages images;  // every image and video of the conversation

  ProcessedImage image(const std::string& path) const {
    return processor->process(load_rgb_image(path));
  }
  ProcessedImage video(const std::string& path) const {
    return VideoProcessor::for_model(m.config, processor).process(path);
  }

  // Generates the assistant's reply to the conversation so far, streaming it; returns its text.
  std::string reply() {
    const std::vector<int32_t> prompt =
        encode_generation_prompt(*m.tokenizer, messages, images.prompts, processor->image_token());
    const int64_t S = processor->tile_size();
    Tensor px;
    if (images.count() > 0) px = Tensor::from_vector(images.pixels, {images.tiles(), 3, S, S});
    Utf8Stream stream;
    std::string text;
    GenerationStats st;
    generate(
        *m.model, {prompt}, {px, {images.count()}, images.tiles_per_image}, gen,
        [&](size_t, int32_t id) {
          if (m.tokenizer->is_special(id)) return;
          const std::string out = stream.push(m.tokenizer->token_bytes(id));
          text += out;
          std::fwrite(out.data(), 1, out.size(), stdout);
          std::fflush(stdout);
        },
        &st);
    const std::string rest = stream.flush();
    text += rest;
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    std::fprintf(
        stderr, "[prefill %lld tokens, %.1f tokens/s; decode %lld tokens, %.1f tokens/s]\n",
        static_cast<long long>(st.prompt_tokens),
        st.prompt_tokens / std::max(st.prefill_seconds, 1e-9),
        static_cast<long long>(st.new_tokens), st.new_tokens / std::max(st.decode_seconds, 1e-9));
    return text;
  }
};

int infer_main(const std::vector<std::string>& argv) {
  cli::Args a(argv,
              {{"model", true},
               {"image", true},
               {"video", true},
               {"prompt", true},
               {"system", true},
               {"max-new-tokens", true},
               {"temperature", true},
               {"top-p", true},
               {"top-k", true},
               {"repetition-penalty", true},
               {"seed", true},
               {"greedy", false},
               {"interactive", false},
               {"decode-dtype", true},
               {"decode-threads", true},
               {"device", true}},
              "infer");
  const LoadedModel m = load_model_dir(a.get("model"));
  const Device device = place_for_inference(*m.model, a, "infer").device;
  Chat chat{m, ImageProcessor::for_model(m.config), {}, {}, {}};
  chat.gen.max_new_tokens = a.get_int("max-new-tokens", 512);
  chat.gen.seed = static_cast<uint64_t>(a.get_int("seed", 42));
  chat.gen.sampling.greedy = a.has("greedy");
  chat.gen.sampling.temperature = a.get_double("temperature", 0.85);
  chat.gen.sampling.top_p = a.get_double("top-p", 0.85);
  chat.gen.sampling.top_k = a.get_int("top-k", 50);
  chat.gen.sampling.repetition_penalty = a.get_double("repetition-penalty", 1.0);
  chat.gen.eos_id = end_of_turn_id(*m.tokenizer);
  const DecodeOptions decode = decode_options(m.model->llm, a, "infer", device);
  chat.gen.decode_weights = decode.weights;
  chat.gen.decode_threads = decode.threads;
  if (a.has("system")) chat.messages.push_back({"system", a.get("system")});
  std::vector<ProcessedImage> stills, videos;
  for (const std::string& path : a.get_all("image")) stills.push_back(chat.image(path));
  for (const std::string& path : a.get_all("video")) videos.push_back(chat.video(path));
  // Placeholders of media given on the command line and not yet in a message, in order.
  std::string unplaced;
  const ChatTemplate family = m.tokenizer->chat_template();
  for (size_t i = 0; i < stills.size(); ++i) unplaced += media_placeholder(family, false);
  for (size_t i = 0; i < videos.size(); ++i) unplaced += media_placeholder(family, true);
  chat.images =
      in_placeholder_order({{"user", a.get("prompt", "")}}, std::move(stills), std::move(videos));

  if (!a.has("interactive")) {
    MV_CHECK(a.has("prompt"), "infer: --prompt is required (or use --interactive)");
    chat.messages.push_back({"user", a.get("prompt")});
    chat.reply();
    return 0;
  }
  // Interactive chat. Images and videos given with --image and --video belong to the first
  // message.
  std::fprintf(stderr,
               "chat: type a message; /image PATH attaches an image, /video PATH a video, /reset "
               "clears, /quit ends\n");
  if (a.has("prompt")) {
    chat.messages.push_back({"user", a.get("prompt")});
    unplaced.clear();
    chat.messages.push_back({"assistant", chat.reply()});
  }
  for (std::string line; std::fprintf(stderr, "> "), std::getline(std::cin, line);) {
    if (line == "/quit" || line == "/exit") break;
    if (line == "/reset") {
      chat.messages.erase(std::remove_if(chat.messages.begin(), chat.messages.end(),
                                         [](const Message& msg) { return msg.role != "system"; }),
                          chat.messages.end());
      chat.images = {};
      unplaced.clear();
      std::fprintf(stderr, "(history cleared)\n");
      continue;
    }
    const bool is_image = line.rfind("/image ", 0) == 0, is_video = line.rfind("/video ", 0) == 0;
    if (is_image || is_video) {
      try {
        chat.images.add(is_image ? chat.image(line.substr(7)) : chat.video(line.substr(7)));
        unplaced += media_placeholder(family, !is_image);
        std::fprintf(stderr, "(%s attached to the next message)\n", is_image ? "image" : "video");
      } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
      }
      continue;
    }
    if (line.empty()) continue;
    chat.messages.push_back({"user", unplaced + line});
    unplaced.clear();
    try {
      chat.messages.push_back({"assistant", chat.reply()});
    } catch (const std::exception& e) {
      chat.messages.pop_back();
      std::fprintf(stderr, "error: %s\n", e.what());
    }
  }
  return 0;
}

}  // namespace
}  // namespace minivlm

int main(int argc, char** argv) {
  minivlm::ensure_passive_openmp_wait(argv);
  try {
    return minivlm::infer_main(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "infer: error: %s\n", e.what());
    return 1;
  }
}
