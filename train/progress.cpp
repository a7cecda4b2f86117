#include "train/progress.h"

#include <unistd.h>

#include <cstdio>

namespace minivlm {

Progress::Progress(int64_t total_steps, int64_t start_step, int64_t log_every)
    : total_(total_steps),
      start_(start_step),
      every_(log_every),
      tty_(isatty(STDERR_FILENO) != 0),
      t0_(std::chrono::steady_clock::now()) {}

std::string Progress::eta(int64_t step) const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  const int64_t done = step - start_;
  if (done <= 0) return "--:--";
  const auto left = static_cast<int64_t>(elapsed / static_cast<double>(done) *
                                         static_cast<double>(total_ - step));
  char buf[32];
  if (left >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(left / 3600),
                  static_cast<long long>(left / 60 % 60), static_cast<long long>(left % 60));
  else
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", static_cast<long long>(left / 60),
                  static_cast<long long>(left % 60));
  return buf;
}

void Progress::update(int64_t step, double loss, double lr, double tokens_per_s,
                      std::optional<double> aux) {
  char aux_text[32] = "";
  if (aux) std::snprintf(aux_text, sizeof aux_text, " aux %.5f", *aux);
  if (tty_) {
    constexpr int kWidth = 28;
    const int filled = total_ > 0 ? static_cast<int>(kWidth * step / total_) : 0;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r[%s] %lld/%lld loss %.4f%s lr %.2e %.0f tok/s eta %s ", bar.c_str(),
                 static_cast<long long>(step), static_cast<long long>(total_), loss, aux_text, lr,
                 tokens_per_s, eta(step).c_str());
    std::fflush(stderr);
    drawn_ = true;
    return;
  }
  if (step % every_ != 0 && step != total_) return;
  std::fprintf(stderr, "step %lld/%lld  loss %.4f%s  lr %.2e  %.0f tok/s  eta %s\n",
               static_cast<long long>(step), static_cast<long long>(total_), loss, aux_text, lr,
               tokens_per_s, eta(step).c_str());
}

void Progress::message(const std::string& line) {
  if (tty_ && drawn_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s\n", line.c_str());
  drawn_ = false;
}

void Progress::finish() {
  if (tty_ && drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

}  // namespace minivlm
