// The emulator's record of one block in flight: its threads, warps and barrier. Internal.
#pragma once

#include <cstdint>
#include <source_location>
#include <string>

#include "collectives.h"
#include "context.h"

namespace simt::detail {

inline constexpr unsigned kMaxBlockThreads = 1024;
inline constexpr unsigned kWarpSize = 32;
inline constexpr unsigned kMaxWarps = kMaxBlockThreads / kWarpSize;

enum class ThreadState : std::uint8_t { ready, waiting, exited };

struct Thread {
  ThreadContext context;  // what the kernel reads through threadIdx, blockIdx, ...
  unsigned id = 0;        // linear: x + y*bx + z*bx*by
  ThreadState state = ThreadState::exited;

  // Where the thread waits (valid while waiting): the collective's name and source line.
  const char* waits_in = "";
  std::source_location waits_at;

  // The warp operation it waits in, and its result once the last lane of the mask arrived.
  WarpOp op = WarpOp::syncwarp;
  unsigned mask = 0;
  std::uint64_t value = 0;
  int lane_arg = 0;
  int width = 0;
  std::uint64_t result = 0;

  // ThreadSanitizer bookkeeping: completed barriers and __syncwarps, and the sync objects this
  // thread releases at __syncwarp (indexed by the parity of its count).
  unsigned barriers = 0;
  unsigned syncwarps = 0;
  unsigned syncwarp_parities = 0;  // bit p: parity of lane p's count at the last completed one
  char syncwarp_token[2] = {};

  unsigned lane() const { return id % kWarpSize; }
  unsigned warp() const { return id / kWarpSize; }
};

struct Warp {
  unsigned present = 0;  // lanes that exist (the last warp of a block may be partial)
  unsigned waiting = 0;  // lanes waiting in a warp operation
  unsigned exited = 0;
};

struct Block {
  unsigned size = 0;
  unsigned warp_count = 0;
  Warp warps[kMaxWarps];

  // The barrier being gathered: how many arrived, where, and how many with a true predicate.
  unsigned arrived = 0;
  unsigned first_arrival = 0;
  const char* barrier_name = "";
  std::source_location barrier_at;
  int predicate_count = 0;
  int barrier_result = 0;

  unsigned exited = 0;
  unsigned first_exited = 0;

  std::string error;  // the first rule broken; the block is aborted once it is set
  bool aborting = false;

  // ThreadSanitizer sync objects: host -> threads at start, threads -> host at exit, and one per
  // barrier parity (a thread can be at most one barrier ahead of a thread not yet resumed).
  char start_token = 0;
  char done_token = 0;
  char barrier_token[2] = {};
};

}  // namespace simt::detail
