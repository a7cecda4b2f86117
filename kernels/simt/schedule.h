// The order in which the emulator runs threads and blocks.
//
// Threads run until they reach a collective (barrier, warp operation) or exit, so the thread order
// decides which side of a missing barrier runs first: a missing __syncthreads shows in some orders,
// a missing __syncwarp in others, so kernels are tested under all of them and must give the same
// bits. The schedule comes from set_schedule(), else from the environment variable SIMT_SCHEDULE
// (forward | reverse | random[:seed] | blocks[:seed]), else forward.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace simt {

enum class ThreadOrder { forward, reverse, random };

struct Schedule {
  ThreadOrder threads = ThreadOrder::forward;
  bool shuffle_blocks = false;  // blocks in a seeded random order instead of linear order
  std::uint64_t seed = 1;       // for random thread orders and shuffled blocks

  std::string name() const;
  bool operator==(const Schedule&) const = default;
};

// "forward", "reverse", "random", "random:<seed>", "blocks", "blocks:<seed>"; throws simt::Error.
Schedule parse_schedule(std::string_view text);

// forward, reverse, random, and shuffled blocks: the set every kernel test runs under.
const std::vector<Schedule>& all_schedules();

void set_schedule(const Schedule& schedule);
void clear_schedule();  // back to SIMT_SCHEDULE, else forward
Schedule current_schedule();

}  // namespace simt
