// minivlm forward --model DIR (--chat TEXT | --text RAW) [--image PATH]... [--video PATH]...
// --out FILE.safetensors
// [--device cpu|cuda|cuda-emu]: one forward pass of a model directory on one prompt, writing the
// token ids ("input_ids", i64 [T]) and the fp32 logits ("logits", f32 [T, V]) to a safetensors
// file: the tool for holding minivlm against other implementations (transformers, MiniMind's
// PyTorch code) on the same input.
//
// --chat TEXT is one user turn, a placeholder once per image and once per video followed by TEXT
// ("<image>\n" in MiniMind's formats as MiniMind-V's data writes it, "<image>" in SmolVLM's: an
// image item of the content list; text/chat.h media_placeholder), in the model's chat template with
// its generation prompt (what infer answers). --text RAW
// is tokenized as is, each <image> / <video> replaced by the next image's / video's prompt (their
// numbers must be equal). Each image is decoded and processed by the model's image processor, each
// video by its video processor (data/video.h: sampled frames, one tile each), as infer and the
// data pipeline do.
#include <cstdio>
#include <string>
#include <vector>

#include "autograd/node.h"
#include "core/error.h"
#include "data/image.h"
#include "data/processor.h"
#include "data/video.h"
#include "infer/device_model.h"
#include "io/model_io.h"
#include "io/safetensors.h"
#include "text/chat.h"
#include "text/tokenizer.h"
#include "tools/command.h"

namespace minivlm {

MINIVLM_COMMAND("forward",
                "one forward pass on a prompt: token ids and logits to a safetensors file") {
  cli::Args a(args,
              {{"model", true},
               {"chat", true},
               {"text", true},
               {"image", true},
               {"video", true},
               {"out", true},
               {"device", true}},
              "minivlm forward");
  MV_CHECK(a.has("chat") != a.has("text"),
           "forward: give exactly one of --chat TEXT (a user turn in the model's chat template) "
           "and --text RAW (tokenized as is)");
  const std::string out = a.get("out");
  const LoadedModel m = load_model_dir(a.get("model"));
  const Device device = place_for_inference(*m.model, a.get("device", "cpu"));
  const std::shared_ptr<const ImageProcessor> processor = ImageProcessor::for_model(m.config);

  std::vector<ProcessedImage> stills, videos;
  for (const std::string& path : a.get_all("image"))
    stills.push_back(processor->process(load_rgb_image(path)));
  if (a.has("video")) {
    const VideoProcessor video = VideoProcessor::for_model(m.config, processor);
    for (const std::string& path : a.get_all("video")) videos.push_back(video.process(path));
  }
  std::string content;
  if (a.has("chat")) {
    const ChatTemplate family = m.tokenizer->chat_template();
    for (size_t i = 0; i < stills.size(); ++i) content += media_placeholder(family, false);
    for (size_t i = 0; i < videos.size(); ++i) content += media_placeholder(family, true);
    content += a.get("chat");
  } else {
    content = a.get("text");
  }
  const ProcessedImages images =
      in_placeholder_order({{"user", content}}, std::move(stills), std::move(videos));
  std::vector<int32_t> ids;
  if (a.has("chat"))
    ids = encode_generation_prompt(*m.tokenizer, {{"user", content}}, images.prompts,
                                   processor->image_token());
  else
    ids = m.tokenizer->encode(expand_images(content, images.prompts));
  const int64_t T = static_cast<int64_t>(ids.size());
  MV_CHECK(T > 0, "forward: the prompt has no tokens");

  VlmBatch batch;
  batch.ids = Tensor::from_vector(std::vector<int64_t>(ids.begin(), ids.end()), {1, T});
  batch.label_mask = Tensor::zeros({1, T}, DType::i64);
  batch.images_per_sample = {images.count()};
  batch.tiles_per_image = images.tiles_per_image;
  const int64_t S = processor->tile_size();
  if (images.count() > 0)
    batch.pixels = Tensor::from_vector(images.pixels, {images.tiles(), 3, S, S});
  Tensor logits;
  {
    NoGradGuard no_grad;
    logits = m.model->forward(batch).logits.select(0, 0);  // [T, V]
  }
  save_safetensors(out, {{"input_ids", batch.ids.reshape({T})}, {"logits", logits}},
                   {{"model", a.get("model")}, {"device", device.str()}});
  std::printf("forward: %lld tokens, %lld images, logits [%lld, %lld] (%s) -> %s\n",
              static_cast<long long>(T), static_cast<long long>(images.count()),
              static_cast<long long>(T), static_cast<long long>(logits.size(1)),
              device.str().c_str(), out.c_str());
  return 0;
}

}  // namespace minivlm
