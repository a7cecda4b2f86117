// The executor owns a fiber per thread slot (reused across blocks and launches) and runs a block by
// resuming its ready threads in the schedule's order until all have exited. A thread runs until it
// waits in a collective or exits, so code between collectives runs at native speed. There is one
// executor: launches take turns (see launch.cpp), and between blocks every fiber is parked at the
// top of its loop, so the next launch may come from another OS thread. Internal.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "block.h"
#include "launch.h"
#include "schedule.h"

namespace simt::detail {

// Thrown inside an emulated thread to unwind its stack when its block is aborted.
struct Abort {};

struct BlockLaunch {
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
  void* dynamic_smem;
  ThreadOrder order;
  std::uint64_t seed;  // for random thread orders; already mixed with the block index
  const GridTask* task;
};

class Executor {
 public:
  static Executor& instance();

  Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Runs one block to completion; throws simt::Error naming the broken rule.
  void run_block(const BlockLaunch& launch);

  // For collectives, called on the emulated thread.
  Thread& current();
  Thread& thread(unsigned id);
  Block& block() { return block_; }
  // Returns once the current thread is ready again; throws Abort if its block is aborted.
  void wait(Thread& self, const char* name, const std::source_location& where);
  // Records the error (the first one wins) and unwinds the current thread.
  [[noreturn]] void fail(const Thread& self, const std::string& message);
  void record_error(const Thread& self, const std::string& message);

 private:
  struct Slot;

  void add_slot();
  void resume(Slot& slot);
  void switch_to_host(Slot& slot);
  [[noreturn]] void fiber_main(Slot& slot);
  void run_thread(Thread& self);
  void thread_exited(Thread& self);
  void next_order(const BlockLaunch& launch, std::uint64_t& rng);
  void abort_block();
  std::string deadlock_message() const;

  std::unique_ptr<Slot[]> slots_;  // kMaxBlockThreads of them; fibers are created on first use
  unsigned slot_count_ = 0;
  std::vector<unsigned> order_;
  Block block_;
  const GridTask* task_ = nullptr;
  Slot* current_ = nullptr;

  struct Host;
  std::unique_ptr<Host> host_;
};

// "(x,y,z)"
std::string format_dim(unsigned x, unsigned y, unsigned z);
std::string format_site(const std::source_location& where);  // "file:line:column"
std::string format_mask(unsigned mask);                      // "0x0000ffff"

}  // namespace simt::detail
