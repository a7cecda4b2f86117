#include "infer/serve/server.h"

#include <httplib.h>

#include <cinttypes>
#include <cstdio>
#include <random>
#include <thread>

#include "data/video.h"
#include "text/chat.h"

namespace minivlm::serve {

namespace {

using nlohmann::json;

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string completion_id() {
  static std::mutex mu;
  static std::mt19937_64 gen{std::random_device{}()};
  std::lock_guard lk(mu);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "chatcmpl-%016" PRIx64 "%08" PRIx64, gen(), gen() & 0xffffffffu);
  return buf;
}

uint64_t random_seed() {
  static std::mutex mu;
  static std::mt19937_64 gen{std::random_device{}()};
  std::lock_guard lk(mu);
  return gen();
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dump_json(e.body()), "application/json");
}

// What a request becomes: its prompt ids (the chat template with each image's prompt), its pixels
// and its limits. Throws ApiError.
std::shared_ptr<Job> make_job(const ChatRequest& r, const LoadedModel& m,
                              const ImageProcessor& processor, const Engine& engine,
                              const ServerOptions& o, Clock::time_point arrival) {
  auto job = std::make_shared<Job>();
  std::vector<ProcessedImage> stills;
  for (size_t i = 0; i < r.images.size(); ++i) {
    try {
      stills.push_back(processor.process(r.images[i]));
    } catch (const std::exception& e) {
      throw ApiError(400, "Invalid image " + std::to_string(i) + ": " + client_message(e),
                     "messages", "invalid_image");
    }
  }
  const ProcessedImages images = in_placeholder_order(r.messages, std::move(stills), {});
  try {
    job->prompt =
        encode_generation_prompt(*m.tokenizer, r.messages, images.prompts, processor.image_token());
  } catch (const std::exception& e) {
    throw ApiError(400, "The messages cannot be rendered: " + client_message(e), "messages");
  }
  const int64_t T = static_cast<int64_t>(job->prompt.size()), ctx = engine.options().context;
  const int64_t max_prompt = o.max_prompt_tokens > 0 ? o.max_prompt_tokens : ctx - 1;
  if (T > max_prompt || T + 1 > ctx)
    throw ApiError(400,
                   "This model's maximum context length is " + std::to_string(ctx) +
                       " tokens (prompts up to " + std::to_string(std::min(max_prompt, ctx - 1)) +
                       "). However, your messages resulted in " + std::to_string(T) + " tokens.",
                   "messages", "context_length_exceeded");
  const int64_t cap = o.max_tokens > 0 ? o.max_tokens : ctx;
  if (r.max_tokens) {
    if (*r.max_tokens > cap)
      throw ApiError(400,
                     "max_tokens is too large: " + std::to_string(*r.max_tokens) +
                         ". This server allows at most " + std::to_string(cap) + ".",
                     "max_tokens", "invalid_value");
    if (T + *r.max_tokens > ctx)
      throw ApiError(400,
                     "This model's maximum context length is " + std::to_string(ctx) +
                         " tokens. However, you requested " + std::to_string(T + *r.max_tokens) +
                         " tokens (" + std::to_string(T) + " in the messages, " +
                         std::to_string(*r.max_tokens) +
                         " in the completion). Please reduce the length of the messages or "
                         "completion.",
                     "messages", "context_length_exceeded");
  }
  job->max_tokens = r.max_tokens.value_or(std::min(cap, ctx - T));
  if (images.count() > 0) {
    const int64_t S = processor.tile_size();
    job->pixels = Tensor::from_vector(images.pixels, {images.tiles(), 3, S, S});
  }
  job->images = images.count();
  job->tiles_per_image = images.tiles_per_image;
  job->sampling = r.sampling;
  job->seed = r.seed.value_or(random_seed());
  job->stop = r.stop;
  job->ignore_eos = r.ignore_eos;
  job->deadline =
      arrival + std::chrono::microseconds(static_cast<int64_t>(o.timeout_seconds * 1e6));
  return job;
}

json usage(int64_t prompt, int64_t completion) {
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion}};
}

std::string sse(const json& j) { return "data: " + dump_json(j) + "\n\n"; }

}  // namespace

void run_server(const LoadedModel& m, std::shared_ptr<const ImageProcessor> processor,
                Engine& engine, const ServerOptions& o,
                const std::function<bool()>& stop_requested) {
  httplib::Server svr;
  const EngineOptions& eo = engine.options();
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(eo.max_batch + eo.max_queue + 8);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  svr.set_payload_max_length(static_cast<size_t>(o.max_body_bytes));
  svr.set_keep_alive_timeout(2);

  const std::string placeholder = media_placeholder(m.tokenizer->chat_template(), false);
  std::atomic<bool> closing{false};
  std::atomic<int64_t> in_flight{0};  // chat requests not yet fully answered
  const int64_t created = unix_time();

  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(chat_page()), "text/html; charset=utf-8");
  });
  svr.Get("/health", [&](const httplib::Request&, httplib::Response& res) {
    const EngineStats s = engine.stats();
    json vision = nullptr;
    if (const VisionFeatureCache* vc = m.model->vision_cache())
      vision = {{"hits", vc->hits()}, {"misses", vc->misses()}, {"bytes", vc->bytes()}};
    res.set_content(dump_json({{"status", closing ? "shutting_down" : "ok"},
                               {"vision_cache", vision},
                               {"active", s.active},
                               {"queued", s.queued},
                               {"requests", s.admitted},
                               {"finished", s.finished},
                               {"cancelled", s.cancelled},
                               {"prefills", s.prefills},
                               {"steps", s.steps},
                               {"rows_total", s.rows_total},
                               {"rows_max", s.rows_max}}),
                    "application/json");
    if (closing) res.status = 503;
  });
  const json model_card = {
      {"id", o.model_name}, {"object", "model"}, {"created", created}, {"owned_by", "minivlm"}};
  svr.Get("/v1/models", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(dump_json({{"object", "list"}, {"data", json::array({model_card})}}),
                    "application/json");
  });
  svr.Get("/v1/models/(.+)", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != o.model_name)
      return send_error(
          res, ApiError(404, "The model '" + std::string(req.matches[1]) + "' does not exist.",
                        "model", "model_not_found"));
    res.set_content(dump_json(model_card), "application/json");
  });

  svr.Post("/v1/chat/completions", [&](const httplib::Request& req, httplib::Response& res) {
    if (closing)
      return send_error(res, ApiError(503, "The server is shutting down.", {}, "shutting_down"));
    const Clock::time_point arrival = Clock::now();
    std::shared_ptr<Job> job;
    ChatRequest r;
    try {
      r = parse_chat_request(req.body, o.model_name, placeholder, o.limits);
      job = make_job(r, m, *processor, engine, o, arrival);
      ++in_flight;
      try {
        engine.submit(job);
      } catch (...) {
        --in_flight;
        throw;
      }
    } catch (const ApiError& e) {
      return send_error(res, e);
    } catch (const std::exception& e) {
      return send_error(res, ApiError(500, client_message(e), {}, "server_error"));
    }
    const std::string id = completion_id();
    const int64_t now = unix_time(), prompt_tokens = static_cast<int64_t>(job->prompt.size());
    const json base = {{"id", id},
                       {"object", "chat.completion.chunk"},
                       {"created", now},
                       {"model", o.model_name},
                       {"system_fingerprint", nullptr}};
    if (!r.stream) {
      Job::State st;
      while (!(st = job->wait_past(st.text.size(), std::chrono::milliseconds(1000))).finished) {
      }
      --in_flight;
      if (st.error) return send_error(res, *st.error);
      json reply = base;
      reply["object"] = "chat.completion";
      reply["choices"] = json::array({{{"index", 0},
                                       {"message", {{"role", "assistant"}, {"content", st.text}}},
                                       {"logprobs", nullptr},
                                       {"finish_reason", st.finish_reason}}});
      reply["usage"] = usage(prompt_tokens, st.completion_tokens);
      res.set_content(dump_json(reply), "application/json");
      return;
    }
    // The stream starts with the reply's first text, so that a request that fails before it
    // (the timeout in the queue, a prefill error) still gets its own status.
    Job::State first;
    while (!(first = job->wait_past(0, std::chrono::milliseconds(1000))).finished &&
           first.text.empty()) {
    }
    if (first.error) {
      --in_flight;
      return send_error(res, *first.error);
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    struct Stream {
      size_t sent = 0;
      bool started = false;
    };
    auto s = std::make_shared<Stream>();
    const bool include_usage = r.include_usage;
    res.set_chunked_content_provider(
        "text/event-stream",
        [job, s, base, include_usage, prompt_tokens](size_t, httplib::DataSink& sink) {
          const auto chunk = [&](const json& delta, const json& finish) {
            json c = base;
            c["choices"] = json::array({{{"index", 0},
                                         {"delta", delta},
                                         {"logprobs", nullptr},
                                         {"finish_reason", finish}}});
            return sse(c);
          };
          const auto write = [&](const std::string& text) {
            if (sink.write(text.data(), text.size())) return true;
            job->cancelled = true;  // the client is gone: free its row
            return false;
          };
          if (!s->started) {
            s->started = true;
            return write(chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
          }
          const Job::State st = job->wait_past(s->sent, std::chrono::milliseconds(250));
          if (!sink.is_writable()) {
            job->cancelled = true;
            return false;
          }
          if (st.text.size() > s->sent) {
            if (!write(chunk({{"content", st.text.substr(s->sent)}}, nullptr))) return false;
            s->sent = st.text.size();
          }
          if (!st.finished) return true;
          std::string tail;
          if (st.error) {
            tail = sse(st.error->body());
          } else {
            tail = chunk(json::object(), st.finish_reason);
            if (include_usage) {
              json u = base;
              u["choices"] = json::array();
              u["usage"] = usage(prompt_tokens, st.completion_tokens);
              tail += sse(u);
            }
          }
          tail += "data: [DONE]\n\n";
          if (!write(tail)) return false;
          sink.done();
          return true;
        },
        [job, &in_flight](bool success) {
          if (!success) job->cancelled = true;
          --in_flight;
        });
  });

  svr.set_error_handler(httplib::Server::HandlerWithResponse([&](const httplib::Request& req,
                                                                 httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const bool known = req.path == "/" || req.path == "/health" || req.path == "/v1/models" ||
                       req.path == "/v1/chat/completions";
    if (res.status == 404 && known) {
      res.status = 405;
      send_error(res, ApiError(405, "Method " + req.method + " is not allowed on " + req.path + ".",
                               {}, "method_not_allowed"));
    } else if (res.status == 404) {
      send_error(res, ApiError(404, "Unknown route: " + req.method + " " + req.path + ".", {},
                               "unknown_route"));
    } else if (res.status == 413) {
      send_error(res, ApiError(413,
                               "The request body is too large (the limit is " +
                                   std::to_string(o.max_body_bytes) + " bytes).",
                               {}, "request_too_large"));
    } else {
      send_error(res, ApiError(res.status, "HTTP error " + std::to_string(res.status) + ".", {},
                               res.status >= 500 ? "server_error" : "invalid_request"));
    }
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = client_message(e);
        } catch (...) {
        }
        send_error(res, ApiError(500, "Internal error: " + what, {}, "server_error"));
      });
  if (o.log_requests)
    svr.set_logger([](const httplib::Request& req, const httplib::Response& res) {
      std::fprintf(stderr, "serve: %s %s → %d\n", req.method.c_str(), req.path.c_str(), res.status);
    });

  int port = o.port;
  if (port == 0) {
    port = svr.bind_to_any_port(o.host);
    MV_CHECK(port > 0, "serve: cannot listen on ", o.host, " (any port)");
  } else {
    MV_CHECK(svr.bind_to_port(o.host, port), "serve: cannot listen on ", o.host, ":", port,
             ". HINT: is another server on that port? --port 0 picks a free one");
  }
  std::fprintf(stderr, "serve: listening on http://%s:%d (model %s)\n", o.host.c_str(), port,
               o.model_name.c_str());
  std::fflush(stderr);

  std::thread watcher([&] {
    while (!stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    closing = true;
    std::fprintf(stderr, "serve: stopping: finishing %" PRId64 " requests in flight\n",
                 in_flight.load());
    while (in_flight.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    svr.stop();
  });
  svr.listen_after_bind();
  watcher.join();
  engine.drain();
  std::fprintf(stderr, "serve: stopped\n");
}

}  // namespace minivlm::serve
