#include "schedule.h"

#include <charconv>
#include <cstdlib>
#include <mutex>
#include <optional>

#include "error.h"

namespace simt {

namespace {

std::mutex& schedule_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::optional<Schedule>& chosen() {
  static std::optional<Schedule> schedule;
  return schedule;
}

Schedule from_environment() {
  const char* text = std::getenv("SIMT_SCHEDULE");
  if (text == nullptr || *text == '\0') return {};
  try {
    return parse_schedule(text);
  } catch (const Error& e) {
    throw Error(detail::concat(e.what(), " (from the environment variable SIMT_SCHEDULE)"));
  }
}

}  // namespace

std::string Schedule::name() const {
  if (shuffle_blocks) return detail::concat("blocks:", seed);
  switch (threads) {
    case ThreadOrder::forward:
      return "forward";
    case ThreadOrder::reverse:
      return "reverse";
    case ThreadOrder::random:
      return detail::concat("random:", seed);
  }
  return "?";
}

Schedule parse_schedule(std::string_view text) {
  const std::size_t colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  Schedule schedule;
  if (colon != std::string_view::npos) {
    const std::string_view digits = text.substr(colon + 1);
    const auto [end, error] =
        std::from_chars(digits.data(), digits.data() + digits.size(), schedule.seed);
    if (error != std::errc{} || end != digits.data() + digits.size() || digits.empty() ||
        (kind != "random" && kind != "blocks")) {
      throw Error(detail::concat("simt: bad schedule '", text,
                                 "': only random and blocks take a seed, as random:<integer>"));
    }
  }
  if (kind == "forward") return schedule;
  if (kind == "reverse") {
    schedule.threads = ThreadOrder::reverse;
    return schedule;
  }
  if (kind == "random") {
    schedule.threads = ThreadOrder::random;
    return schedule;
  }
  if (kind == "blocks") {
    schedule.shuffle_blocks = true;
    return schedule;
  }
  throw Error(detail::concat("simt: unknown schedule '", text,
                             "'; valid: forward, reverse, random[:seed], blocks[:seed]"));
}

const std::vector<Schedule>& all_schedules() {
  static const std::vector<Schedule> schedules = {
      parse_schedule("forward"), parse_schedule("reverse"), parse_schedule("random"),
      parse_schedule("blocks")};
  return schedules;
}

void set_schedule(const Schedule& schedule) {
  std::lock_guard lock(schedule_mutex());
  chosen() = schedule;
}

void clear_schedule() {
  std::lock_guard lock(schedule_mutex());
  chosen().reset();
}

Schedule current_schedule() {
  std::lock_guard lock(schedule_mutex());
  return chosen() ? *chosen() : from_environment();
}

}  // namespace simt
