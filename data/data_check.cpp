#include "data/data_check.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/error.h"

namespace minivlm {

namespace {

// What check_dataset keeps of one record.
struct Outcome {
  bool usable = false;
  bool truncated = false;
  int64_t tokens = 0;
  int64_t images = 0;
  std::string reason;
};

std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100.0 * fraction);
  return buf;
}

bool holds_value(const std::string& word) {
  return std::any_of(word.begin(), word.end(),
                     [](char c) { return (c >= '0' && c <= '9') || c == '/'; });
}

}  // namespace

std::string skip_reason_kind(const std::string& reason) {
  std::string s = reason;
  if (s.rfind("chat: ", 0) == 0) s.erase(0, 6);
  s = s.substr(0, std::min(s.find(": "), s.find(" (")));
  // Quoted values ('bot', "a.png, ") become "…"; a quote opens a value only at a word's start.
  std::string unquoted;
  for (size_t k = 0; k < s.size(); ++k) {
    const char c = s[k];
    if ((c == '\'' || c == '"') && (k == 0 || s[k - 1] == ' ')) {
      const size_t close = s.find(c, k + 1);
      if (close != std::string::npos) {
        unquoted += "…";
        k = close;
        continue;
      }
    }
    unquoted += c;
  }
  std::string out;
  size_t from = 0;
  while (from <= unquoted.size()) {
    size_t space = unquoted.find(' ', from);
    if (space == std::string::npos) space = unquoted.size();
    std::string word = unquoted.substr(from, space - from);
    if (holds_value(word)) word = "…";
    const bool repeat = word == "…" && out.size() >= 3 && out.compare(out.size() - 3, 3, "…") == 0;
    if (!word.empty() && !repeat) out += (out.empty() ? "" : " ") + word;
    from = space + 1;
  }
  return out.empty() ? reason : out;
}

double DataCheckReport::bad_fraction() const {
  return samples > 0 ? static_cast<double>(bad_samples()) / static_cast<double>(samples) : 0.0;
}

int64_t DataCheckReport::length_percentile(double p) const {
  if (lengths.empty()) return 0;
  const double rank = std::ceil(p / 100.0 * static_cast<double>(lengths.size()));
  const size_t k = static_cast<size_t>(std::clamp(rank, 1.0, static_cast<double>(lengths.size())));
  return lengths[k - 1];
}

std::string DataCheckReport::text() const {
  std::string t;
  const auto line = [&t](const std::string& s) { t += s + "\n"; };
  const auto fraction = [this](int64_t n) {
    return percent(samples > 0 ? static_cast<double>(n) / static_cast<double>(samples) : 0.0);
  };
  line("data: " + path);
  line("samples: " + std::to_string(samples));
  line("usable samples: " + std::to_string(usable) + " (" + fraction(usable) + ")" +
       (truncated > 0 ? ", " + std::to_string(truncated) + " of them cut at max_seq_len" : ""));
  line("bad samples: " + std::to_string(bad_samples()) + " (" + fraction(bad_samples()) + ")");
  for (const ReasonGroup& g : bad) {
    line("  " + g.kind + ": " + std::to_string(g.count));
    for (const Location& l : g.first) line("    " + l.where + ": " + l.reason);
    if (g.count > static_cast<int64_t>(g.first.size()))
      line("    ... and " + std::to_string(g.count - static_cast<int64_t>(g.first.size())) +
           " more");
  }
  if (lengths.empty()) {
    line("tokens per sample: no sample was rendered");
  } else {
    line("tokens per sample (" + std::to_string(lengths.size()) + " rendered): p50 " +
         std::to_string(length_percentile(50)) + ", p90 " + std::to_string(length_percentile(90)) +
         ", p99 " + std::to_string(length_percentile(99)) + ", max " +
         std::to_string(lengths.back()));
  }
  std::string hist;
  for (const auto& [images, count] : images_per_sample)
    hist += (hist.empty() ? "" : ", ") + std::to_string(images) + ": " + std::to_string(count);
  line("images per usable sample: " + (hist.empty() ? std::string("none") : hist));
  line("over max_seq_len " + std::to_string(max_seq_len) + ": " + std::to_string(over_long));
  for (const Location& l : over_long_first) line("    " + l.where + ": " + l.reason);
  if (over_long > static_cast<int64_t>(over_long_first.size()))
    line("    ... and " + std::to_string(over_long - static_cast<int64_t>(over_long_first.size())) +
         " more");
  return t;
}

DataCheckReport check_dataset(const Dataset& data, const DataCheckOptions& options) {
  MV_CHECK(options.workers >= 1, "check-data: workers must be at least 1, got ", options.workers);
  MV_CHECK(options.max_locations >= 0, "check-data: max_locations must be >= 0, got ",
           options.max_locations);
  const size_t n = data.size();
  std::vector<Outcome> outcomes(n);
  std::atomic<size_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mu;
  const auto work = [&] {
    for (size_t i = next++; i < n && !failed; i = next++) {
      try {
        const SampleResult r = data.load(i);
        Outcome& o = outcomes[i];
        o.tokens = r.tokens;
        if (r.sample) {
          o.usable = true;
          o.truncated = r.sample->truncated;
          o.images = r.sample->num_images;
        } else {
          o.reason = r.skip_reason;
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (!error) error = std::current_exception();
        failed = true;
      }
      ++done;
    }
  };
  const int threads = static_cast<int>(
      std::min<size_t>(static_cast<size_t>(options.workers), std::max<size_t>(n, 1)));
  // With a progress callback the calling thread reports while `threads` others work; without,
  // it is one of them.
  std::vector<std::thread> pool;
  for (int t = options.progress ? 0 : 1; t < threads; ++t) pool.emplace_back(work);
  if (options.progress) {
    auto last = std::chrono::steady_clock::now();
    while (done < n && !failed) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (std::chrono::steady_clock::now() - last >= std::chrono::seconds(2)) {
        options.progress(done, n);
        last = std::chrono::steady_clock::now();
      }
    }
  } else {
    work();
  }
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);

  DataCheckReport rep;
  rep.path = data.path();
  rep.max_seq_len = data.format().max_seq_len;
  rep.samples = static_cast<int64_t>(n);
  std::unordered_map<std::string, size_t> group_of;
  const auto max_locations = static_cast<size_t>(options.max_locations);
  for (size_t i = 0; i < n; ++i) {
    const Outcome& o = outcomes[i];
    const std::string where = data.location(i);
    if (o.tokens > 0) rep.lengths.push_back(o.tokens);
    if (o.tokens > rep.max_seq_len) {
      ++rep.over_long;
      if (rep.over_long_first.size() < max_locations)
        rep.over_long_first.push_back(
            {where, std::to_string(o.tokens) + " tokens" + (o.usable ? ", cut" : ", skipped")});
    }
    if (o.usable) {
      ++rep.usable;
      rep.truncated += o.truncated ? 1 : 0;
      ++rep.images_per_sample[o.images];
      continue;
    }
    const std::string kind = skip_reason_kind(o.reason);
    auto [it, fresh] = group_of.emplace(kind, rep.bad.size());
    if (fresh) rep.bad.push_back({kind, 0, {}});
    DataCheckReport::ReasonGroup& g = rep.bad[it->second];
    ++g.count;
    if (g.first.size() < max_locations) g.first.push_back({where, o.reason});
  }
  std::stable_sort(rep.bad.begin(), rep.bad.end(),
                   [](const auto& a, const auto& b) { return a.count > b.count; });
  std::sort(rep.lengths.begin(), rep.lengths.end());
  return rep;
}

}  // namespace minivlm
