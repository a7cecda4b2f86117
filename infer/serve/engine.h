// The serving engine (SPEC §10): continuous batching over one KV cache of --max-batch rows.
//
// Requests are queued (up to max_queue waiting). One thread computes: between decode steps it
// admits waiting requests into free rows of the cache — each one's prefill (vision tower through
// the vision-feature cache, then its prompt in one forward) written into its row —, then one decode
// step feeds every active row its last token at the row's own position (DecodeStep::step_rows), so
// the weights are read once per step for all of them. A row leaves when its request ends (end of
// turn, a stop sequence, max_tokens, the context, a cancel or the timeout) and its row takes the
// next request. A row's tokens do not depend on the rows beside it, so a greedy reply equals
// infer's.
//
// A Job is the meeting point of a request's HTTP thread and the engine: the engine appends the
// reply's text (whole UTF-8 characters, stop sequences cut off, special tokens left out) and ends
// it; the HTTP thread waits for more and sends it.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "infer/sampling.h"
#include "infer/utf8_stream.h"
#include "infer/serve/api.h"
#include "io/model_io.h"
#include "nn/decode_step.h"

namespace minivlm::serve {

using Clock = std::chrono::steady_clock;

struct Job {
  // Set before submit().
  std::vector<int32_t> prompt;
  Tensor pixels;  // [tiles, 3, S, S] on the host, undefined without images
  int64_t images = 0;
  std::vector<int64_t> tiles_per_image;
  SamplingOptions sampling;
  uint64_t seed = 0;
  int64_t max_tokens = 0;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  Clock::time_point deadline = Clock::time_point::max();

  // The client is gone: the engine drops the job at its next step.
  std::atomic<bool> cancelled{false};

  // What the engine reports, under mu.
  struct State {
    std::string text;  // the reply so far
    bool finished = false;
    std::string finish_reason;      // "stop" | "length" once finished without error
    std::optional<ApiError> error;  // set when the request failed
    int64_t completion_tokens = 0;  // reply tokens (the end-of-turn token not counted)
  };
  // Waits until the reply holds more than `have` bytes or the job ended (or `wait` passed);
  // returns a copy of the state.
  State wait_past(size_t have, std::chrono::milliseconds wait);

  // Engine side.
  void append(const std::string& text, int64_t tokens);
  void finish(const std::string& reason, int64_t tokens);
  void fail(const ApiError& error);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  State state_;
};

struct EngineOptions {
  int64_t max_batch = 8;
  int64_t max_queue = 64;
  int64_t context = 4096;  // positions per row of the KV cache
  DecodeOptions decode;    // the fast path's weights and threads, where the device has one
  int32_t eos_id = 2;
};

struct EngineStats {
  int64_t queued = 0;     // waiting now
  int64_t active = 0;     // rows decoding now
  int64_t admitted = 0;   // jobs ever queued
  int64_t finished = 0;   // jobs ended (any way)
  int64_t cancelled = 0;  // of them, dropped because the client left
  int64_t prefills = 0;
  int64_t steps = 0;       // decode steps
  int64_t rows_total = 0;  // rows over all steps (rows_total / steps: the mean batch)
  int64_t rows_max = 0;    // the most rows of one step
};

class Engine {
 public:
  // The model stays where it is (place it first); the engine computes on its device.
  Engine(const LoadedModel& model, EngineOptions options);
  ~Engine();  // drain()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const EngineOptions& options() const { return o_; }
  // Threads of a decode step of `rows` rows (0: the op graph's, the back-end's own).
  int decode_threads(int64_t rows) const { return step_->threads(rows); }
  // Queues a job. Throws ApiError 429 when max_queue jobs are waiting, 503 once draining.
  void submit(std::shared_ptr<Job> job);
  // Stops taking jobs, finishes every queued and active one, then stops the engine thread.
  void drain();
  EngineStats stats();

 private:
  struct Row {
    std::shared_ptr<Job> job;
    int64_t slot = 0, position = 0;  // where its next token goes
    std::vector<int32_t> seq;        // prompt and reply ids (the repetition penalty's history)
    Rng rng{0};
    int64_t generated = 0;     // tokens chosen
    int64_t reply_tokens = 0;  // of them, not the end of turn
    int32_t next = 0;          // the token chosen last, fed at the next step
    std::string produced;      // reply text so far, whole characters
    size_t published = 0;      // bytes of `produced` handed to the job
    Utf8Stream utf8;           // bytes of an incomplete character
  };
  void loop();
  void admit();
  // Prefills a job into the last free slot and chooses its first token; false when it ended
  // there (an error, a cancel, the timeout, or a reply of one token).
  bool start(const std::shared_ptr<Job>& job);
  // Chooses the row's next token from its logits; false when the row has ended.
  bool advance(Row& row, const float* logits);
  // Publishes the row's text; `final`: all of it (the row ends).
  void publish(Row& row, bool final);

  const LoadedModel& m_;
  EngineOptions o_;
  KVCache cache_;
  std::unique_ptr<DecodeStep> step_;
  std::vector<Row> rows_;
  std::vector<int64_t> free_slots_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool draining_ = false;
  EngineStats stats_;
  std::thread thread_;
};

}  // namespace minivlm::serve
