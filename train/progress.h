// Training progress on stderr: a redrawn bar on a terminal, plain periodic lines otherwise.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace minivlm {

class Progress {
 public:
  Progress(int64_t total_steps, int64_t start_step, int64_t log_every);
  // Called after every optimizer step; draws when due. `aux`: a MoE model's router loss.
  void update(int64_t step, double loss, double lr, double tokens_per_s,
              std::optional<double> aux = std::nullopt);
  void message(const std::string& line);  // a full line above the bar
  void finish();

 private:
  std::string eta(int64_t step) const;
  int64_t total_, start_, every_;
  bool tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace minivlm
