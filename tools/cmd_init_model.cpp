// minivlm init-model: a fresh model directory from a config, optionally with a pretrained vision
// tower (a Hugging Face CLIP or SigLIP folder or its model.safetensors) and LLM (MiniMind state
// dict as safetensors).
#include <cstdio>

#include "io/model_io.h"
#include "text/tokenizer.h"
#include "tools/command.h"

namespace minivlm {

MINIVLM_COMMAND("init-model",
                "write a new model directory (config, random or imported weights, tokenizer)") {
  cli::Args a(args,
              {{"config", true},
               {"tokenizer", true},
               {"out", true},
               {"seed", true},
               {"vision-from", true},
               {"llm-from", true}},
              "minivlm init-model");
  const ModelConfig config = ModelConfig::from_file(a.get("config"));
  const Tokenizer tok = Tokenizer::from_file(a.get("tokenizer"));
  MV_CHECK(tok.vocab_size() <= config.llm.vocab_size, "the tokenizer has ", tok.vocab_size(),
           " tokens but llm.vocab_size is ", config.llm.vocab_size);
  MiniMindVLM model(config, tok.token_to_id(config.image_token));
  model.init(static_cast<uint64_t>(a.get_int("seed", 42)));
  if (a.has("vision-from")) import_hf_vision(model, a.get("vision-from"));
  if (a.has("llm-from")) import_minimind_llm(model, a.get("llm-from"));
  save_model_dir(model, a.get("tokenizer"), a.get("out"));
  int64_t llm = 0, proj = 0, vis = 0;
  for (const NamedTensor& p : model.params()) {
    if (p.name.rfind("vision_encoder.", 0) == 0)
      vis += p.tensor.numel();
    else if (p.name.rfind("vision_proj.", 0) == 0)
      proj += p.tensor.numel();
    else
      llm += p.tensor.numel();
  }
  std::printf(
      "wrote %s: LLM %.2fM, projector %.3fM, vision tower %.2fM parameters; %lld tokens per "
      "image\n",
      a.get("out").c_str(), llm / 1e6, proj / 1e6, vis / 1e6,
      static_cast<long long>(config.tokens_per_image()));
  return 0;
}

}  // namespace minivlm
