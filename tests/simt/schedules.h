// Helpers for emulator tests: run a computation under every schedule.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "kernels/portable.h"

namespace simt_test {

// Restores the schedule from the environment when a test ends.
class ScheduleGuard {
 public:
  ScheduleGuard() = default;
  ~ScheduleGuard() { simt::clear_schedule(); }
  ScheduleGuard(const ScheduleGuard&) = delete;
  ScheduleGuard& operator=(const ScheduleGuard&) = delete;
};

// `run()` under each of simt::all_schedules(), with the schedule's name beside each result.
template <typename F>
auto under_all_schedules(F&& run) {
  ScheduleGuard guard;
  std::vector<std::pair<std::string, decltype(run())>> results;
  for (const simt::Schedule& schedule : simt::all_schedules()) {
    simt::set_schedule(schedule);
    results.emplace_back(schedule.name(), run());
  }
  return results;
}

}  // namespace simt_test
