#include "infer/serve/engine.h"

#include <algorithm>

#include "autograd/node.h"
#include "infer/utf8_stream.h"

namespace minivlm::serve {

Job::State Job::wait_past(size_t have, std::chrono::milliseconds wait) {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, wait, [&] { return state_.finished || state_.text.size() > have; });
  return state_;
}

void Job::append(const std::string& text, int64_t tokens) {
  {
    std::lock_guard lk(mu_);
    state_.text += text;
    state_.completion_tokens = tokens;
  }
  cv_.notify_all();
}

void Job::finish(const std::string& reason, int64_t tokens) {
  {
    std::lock_guard lk(mu_);
    state_.finished = true;
    state_.finish_reason = reason;
    state_.completion_tokens = tokens;
  }
  cv_.notify_all();
}

void Job::fail(const ApiError& error) {
  {
    std::lock_guard lk(mu_);
    state_.finished = true;
    state_.error = error;
  }
  cv_.notify_all();
}

Engine::Engine(const LoadedModel& model, EngineOptions options)
    : m_(model), o_(std::move(options)) {
  MV_CHECK(o_.max_batch >= 1 && o_.max_queue >= 0 && o_.context >= 2,
           "serve: --max-batch must be ≥ 1, --max-queue ≥ 0 and --context ≥ 2");
  cache_ = KVCache::allocate_for(m_.model->llm, o_.max_batch, o_.context);
  step_ = make_decode_step(m_.model->llm, o_.max_batch, o_.context, o_.decode);
  for (int64_t s = o_.max_batch - 1; s >= 0; --s) free_slots_.push_back(s);
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() { drain(); }

void Engine::submit(std::shared_ptr<Job> job) {
  {
    std::lock_guard lk(mu_);
    if (draining_) throw ApiError(503, "The server is shutting down.", {}, "shutting_down");
    if (static_cast<int64_t>(queue_.size()) >= o_.max_queue)
      throw ApiError(429,
                     "The server is busy: " + std::to_string(queue_.size()) +
                         " requests are already waiting (--max-queue). Retry later.",
                     {}, "queue_full");
    queue_.push_back(std::move(job));
    ++stats_.admitted;
  }
  cv_.notify_all();
}

void Engine::drain() {
  {
    std::lock_guard lk(mu_);
    draining_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

EngineStats Engine::stats() {
  std::lock_guard lk(mu_);
  EngineStats s = stats_;
  s.queued = static_cast<int64_t>(queue_.size());
  return s;
}

void Engine::publish(Row& row, bool final) {
  size_t upto = row.produced.size();
  if (!final) {
    // Hold back a tail that a stop sequence may still complete.
    size_t hold = 0;
    for (const std::string& s : row.job->stop)
      for (size_t k = std::min(s.size() - 1, row.produced.size()); k > hold; --k)
        if (row.produced.compare(row.produced.size() - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
    upto -= hold;
  }
  if (upto > row.published) {
    row.job->append(row.produced.substr(row.published, upto - row.published), row.reply_tokens);
    row.published = upto;
  }
}

bool Engine::advance(Row& row, const float* logits) {
  Job& job = *row.job;
  if (job.cancelled.load()) {
    job.fail(ApiError(499, "The client closed the request.", {}, "client_closed"));
    std::lock_guard lk(mu_);
    ++stats_.cancelled;
    return false;
  }
  if (Clock::now() > job.deadline) {
    job.fail(ApiError(
        408,
        "The request timed out (--timeout) after " + std::to_string(row.generated) + " tokens.", {},
        "timeout"));
    return false;
  }
  const size_t V = static_cast<size_t>(m_.config.llm.vocab_size);
  const int32_t id =
      choose_token(std::vector<float>(logits, logits + V), row.seq, job.sampling, row.rng);
  row.seq.push_back(id);
  ++row.generated;
  const auto end = [&](const char* reason) {
    publish(row, true);
    job.finish(reason, row.reply_tokens);
    return false;
  };
  if (id == o_.eos_id && !job.ignore_eos) return end("stop");
  if (!m_.tokenizer->is_special(id)) {
    const size_t before = row.produced.size();
    row.produced += row.utf8.push(m_.tokenizer->token_bytes(id));
    // The earliest stop sequence in the new text (a match may start in the text before it).
    size_t cut = std::string::npos;
    for (const std::string& s : job.stop) {
      const size_t from = before >= s.size() ? before - s.size() + 1 : 0;
      cut = std::min(cut, row.produced.find(s, from));
    }
    if (cut != std::string::npos) {
      row.produced.resize(cut);
      row.utf8 = {};
      return end("stop");
    }
  }
  ++row.reply_tokens;
  if (row.generated >= job.max_tokens || row.position >= o_.context) {
    row.produced += row.utf8.flush();
    return end("length");
  }
  publish(row, false);
  row.next = id;
  return true;
}

void Engine::admit() {
  while (!free_slots_.empty()) {
    std::shared_ptr<Job> job;
    {
      std::lock_guard lk(mu_);
      if (queue_.empty()) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    if (start(job)) continue;
    std::lock_guard lk(mu_);
    ++stats_.finished;
  }
}

bool Engine::start(const std::shared_ptr<Job>& job) {
  if (job->cancelled.load()) {
    job->fail(ApiError(499, "The client closed the request.", {}, "client_closed"));
    std::lock_guard lk(mu_);
    ++stats_.cancelled;
    return false;
  }
  if (Clock::now() > job->deadline) {
    job->fail(
        ApiError(408, "The request timed out (--timeout) before it could start.", {}, "timeout"));
    return false;
  }
  const int64_t T = static_cast<int64_t>(job->prompt.size());
  Row row;
  row.job = job;
  row.slot = free_slots_.back();
  row.position = T;
  row.seq = job->prompt;
  row.rng = Rng(job->seed);
  try {
    MV_CHECK(T >= 1 && T + 1 <= o_.context, "the prompt has ", T,
             " tokens; this server's context is ", o_.context);
    // The prefill, as generate() does it for one row: the images' rows merged into the prompt's
    // embeddings, one forward writing the keys and values into the row's slot of the cache.
    VlmBatch batch;
    batch.ids =
        Tensor::from_vector(std::vector<int64_t>(job->prompt.begin(), job->prompt.end()), {1, T});
    batch.label_mask = Tensor::zeros({1, T}, DType::i64);
    batch.pixels = job->pixels;
    batch.images_per_sample = {job->images};
    batch.tiles_per_image = job->tiles_per_image;
    KVCache row_cache = cache_.row(row.slot);
    const Tensor hidden = m_.model->llm.forward_hidden(m_.model->embed(batch), 0, &row_cache);
    const std::vector<float> logits =
        m_.model->llm.logits(hidden.narrow(1, T - 1, 1).contiguous()).to_float_vector();
    {
      std::lock_guard lk(mu_);
      ++stats_.prefills;
    }
    if (!advance(row, logits.data())) return false;  // ended at its first token
  } catch (const ApiError& e) {
    job->fail(e);
    return false;
  } catch (const std::exception& e) {
    job->fail(ApiError(400, "The request could not be computed: " + client_message(e), {},
                       "invalid_request"));
    return false;
  }
  free_slots_.pop_back();
  rows_.push_back(std::move(row));
  return true;
}

void Engine::loop() {
  NoGradGuard no_grad;
  const int64_t V = m_.config.llm.vocab_size;
  std::vector<int64_t> ids, slots, positions;
  for (;;) {
    admit();
    if (rows_.empty()) {
      std::unique_lock lk(mu_);
      if (queue_.empty() && draining_) break;
      cv_.wait(lk, [&] { return !queue_.empty() || draining_; });
      continue;
    }
    ids.clear();
    slots.clear();
    positions.clear();
    for (const Row& r : rows_) {
      ids.push_back(r.next);
      slots.push_back(r.slot);
      positions.push_back(r.position);
    }
    const int64_t n = static_cast<int64_t>(rows_.size());
    std::vector<char> keep(rows_.size(), 0);
    try {
      const float* logits = step_->step_rows(n, ids.data(), slots.data(), positions.data(), cache_);
      {
        std::lock_guard lk(mu_);
        ++stats_.steps;
        stats_.rows_total += n;
        stats_.rows_max = std::max(stats_.rows_max, n);
      }
      for (size_t i = 0; i < rows_.size(); ++i) {
        ++rows_[i].position;
        keep[i] = advance(rows_[i], logits + static_cast<int64_t>(i) * V) ? 1 : 0;
      }
    } catch (const std::exception& e) {
      for (Row& r : rows_)
        r.job->fail(
            ApiError(500, "The decode step failed: " + client_message(e), {}, "server_error"));
    }
    std::vector<Row> kept;
    for (size_t i = 0; i < rows_.size(); ++i) {
      if (keep[i]) {
        kept.push_back(std::move(rows_[i]));
      } else {
        free_slots_.push_back(rows_[i].slot);
        std::lock_guard lk(mu_);
        ++stats_.finished;
      }
    }
    rows_ = std::move(kept);
    std::lock_guard lk(mu_);
    stats_.active = static_cast<int64_t>(rows_.size());
  }
}

}  // namespace minivlm::serve
