// minivlm serve (SPEC §10): an OpenAI-compatible HTTP server for a model directory, with images,
// streaming, continuous batching and a chat page at /.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "infer/device_model.h"
#include "infer/serve/server.h"
#include "io/model_io.h"
#include "tools/command.h"
#include "train/stop_signals.h"

namespace minivlm {

MINIVLM_COMMAND("serve",
                "OpenAI-compatible HTTP server: chat completions with images, and a chat page") {
  cli::Args a(args,
              {{"model", true},
               {"host", true},
               {"port", true},
               {"device", true},
               {"model-name", true},
               {"allow-files", true},
               {"max-batch", true},
               {"max-queue", true},
               {"context", true},
               {"max-prompt-tokens", true},
               {"max-tokens", true},
               {"max-image-bytes", true},
               {"max-image-pixels", true},
               {"max-images", true},
               {"max-body-mb", true},
               {"timeout", true},
               {"vision-cache-mb", true},
               {"decode-dtype", true},
               {"decode-threads", true},
               {"quiet", false}},
              "minivlm serve");
  // Before any thread starts: every thread inherits the blocked SIGINT / SIGTERM.
  StopSignals signals;
  ::signal(SIGPIPE, SIG_IGN);  // a client gone mid-write is an error return, not the end
  MV_CHECK(a.has("model"), "serve: --model DIR is required");
  const std::string dir = a.get("model");
  const LoadedModel m = load_model_dir(dir);
  const InferencePlacement placed = place_for_inference(*m.model, a, "serve");
  const Device device = placed.device;

  serve::EngineOptions eo;
  eo.max_batch = a.get_int("max-batch", 8);
  eo.max_queue = a.get_int("max-queue", 64);
  const int64_t model_ctx = m.config.llm.max_position_embeddings;
  eo.context = a.get_int("context", static_cast<int>(std::min<int64_t>(model_ctx, 4096)));
  MV_CHECK(eo.context >= 2 && eo.context <= model_ctx, "serve: --context ", eo.context,
           " must be from 2 to the model's max_position_embeddings, ", model_ctx);
  eo.eos_id = end_of_turn_id(*m.tokenizer);
  eo.decode = decode_options(m.model->llm, a, "serve", device);  // as infer's

  serve::ServerOptions so;
  so.host = a.get("host", "127.0.0.1");
  so.port = a.get_int("port", 8080);
  MV_CHECK(so.port >= 0 && so.port <= 65535, "serve: --port ", so.port, " is not a TCP port");
  std::filesystem::path dir_path = std::filesystem::absolute(dir).lexically_normal();
  if (!dir_path.has_filename()) dir_path = dir_path.parent_path();  // "DIR/"
  so.model_name = a.get("model-name", dir_path.filename().string());
  so.limits.allow_files = a.get("allow-files", "");
  if (!so.limits.allow_files.empty())
    MV_CHECK(std::filesystem::is_directory(so.limits.allow_files), "serve: --allow-files ",
             so.limits.allow_files, " is not a directory");
  so.limits.max_image_bytes = a.get_int("max-image-bytes", 20 << 20);
  so.limits.max_image_pixels = a.get_int("max-image-pixels", 25'000'000);
  so.limits.max_images = a.get_int("max-images", 16);
  so.max_body_bytes = static_cast<int64_t>(a.get_double("max-body-mb", 64) * (1 << 20));
  so.max_prompt_tokens = a.get_int("max-prompt-tokens", 0);
  so.max_tokens = a.get_int("max-tokens", 0);
  so.timeout_seconds = a.get_double("timeout", 600);
  MV_CHECK(so.timeout_seconds > 0, "serve: --timeout must be positive");
  so.log_requests = !a.has("quiet");
  m.model->set_vision_cache(std::make_shared<VisionFeatureCache>(
      static_cast<size_t>(a.get_int("vision-cache-mb", 256)) << 20));

  const LlmConfig& c = m.config.llm;
  const double kv_mib = 2.0 *
                        static_cast<double>(c.num_hidden_layers * eo.max_batch * eo.context *
                                            c.num_key_value_heads * c.head_dim) *
                        static_cast<double>(dtype_size(placed.dtype)) / (1 << 20);
  // The weights' dtype: on a device the op graph's weights, activations and KV cache (bf16 by
  // default); on the CPU fp32, whose decoder then reads its --decode-dtype copies (next line).
  std::fprintf(stderr,
               "serve: model %s (%s) on %s in %s; %lld rows × %lld positions of %s KV cache "
               "(%.0f MiB); queue up to %lld\n",
               so.model_name.c_str(), dir.c_str(), device.str().c_str(), dtype_name(placed.dtype),
               static_cast<long long>(eo.max_batch), static_cast<long long>(eo.context),
               dtype_name(placed.dtype), kv_mib, static_cast<long long>(eo.max_queue));
  serve::Engine engine(m, eo);
  if (has_decode_fast_path(m.model->llm))
    std::fprintf(stderr,
                 "serve: decoding with %s weights, on %d threads for one row and %d for more\n",
                 decode_dtype_name(eo.decode.dtype), engine.decode_threads(1),
                 engine.decode_threads(eo.max_batch));
  serve::run_server(m, ImageProcessor::for_model(m.config), engine, so,
                    [&] { return signals.received() != 0; });
  return 0;
}

}  // namespace minivlm
