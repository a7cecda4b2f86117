// The HTTP side of `minivlm serve` (SPEC §10), on cpp-httplib: routes, request → Job, replies and
// server-sent events, errors as OpenAI's JSON, the chat page, and a shutdown that lets every
// request in flight finish.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "data/processor.h"
#include "infer/serve/api.h"
#include "infer/serve/engine.h"

namespace minivlm::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port
  std::string model_name;
  RequestLimits limits;
  int64_t max_prompt_tokens = 0;  // 0: the context less one
  int64_t max_tokens = 0;         // largest max_tokens a request may ask for; 0: the context
  double timeout_seconds = 600;   // a request's whole life: queue, prefill and reply
  int64_t max_body_bytes = 64 << 20;
  int threads = 0;  // HTTP threads; 0: max_batch + max_queue + 8
  bool log_requests = true;
};

// The chat page (infer/serve/chat_page.html, embedded at build time).
std::string_view chat_page();

// Serves until `stop_requested` turns true (polled), then refuses new requests with 503, lets the
// ones in flight finish and returns. Prints "serve: listening on http://HOST:PORT (model NAME)" to
// stderr once it accepts connections. Throws minivlm::Error when it cannot bind.
void run_server(const LoadedModel& model, std::shared_ptr<const ImageProcessor> processor,
                Engine& engine, const ServerOptions& options,
                const std::function<bool()>& stop_requested);

}  // namespace minivlm::serve
