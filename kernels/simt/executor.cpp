#include "executor.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <exception>
#include <map>
#include <utility>

#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>

#include "error.h"
#include "sanitizer.h"

namespace simt::detail {

namespace bctx = boost::context;

namespace {

// Kernels keep small per-thread state; sanitizer instrumentation enlarges frames.
constexpr std::size_t kStackBytes = (san::kSanitized ? 256 : 64) * 1024;

// A guard-paged stack that tells its slot where it lies (AddressSanitizer needs the bounds).
// Stacks are page-aligned, so their live tops would all compete for the same few cache sets;
// each slot's top is moved down by its own multiple of 256 bytes (boost aligns to 256).
class RecordingStack {
 public:
  RecordingStack(bctx::stack_context* out, std::size_t slot)
      : out_(out), offset_(slot % 16 * 256) {}
  bctx::stack_context allocate() {
    bctx::stack_context stack = inner_.allocate();
    stack.sp = static_cast<char*>(stack.sp) - offset_;
    stack.size -= offset_;
    *out_ = stack;
    return stack;
  }
  void deallocate(bctx::stack_context& stack) noexcept {
    stack.sp = static_cast<char*>(stack.sp) + offset_;
    stack.size += offset_;
    inner_.deallocate(stack);
  }

 private:
  bctx::protected_fixedsize_stack inner_{kStackBytes};
  bctx::stack_context* out_;
  std::size_t offset_;
};

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

struct Executor::Slot {
  Thread thread;
  bctx::fiber fiber;
  bctx::stack_context stack{};
  void* asan_fake_stack = nullptr;
  void* tsan_fiber = nullptr;

  const void* stack_bottom() const { return static_cast<char*>(stack.sp) - stack.size; }
};

// The scheduler's side of every switch.
struct Executor::Host {
  bctx::fiber fiber;  // where a thread returns to when it waits or exits
  void* tsan_fiber = nullptr;
  void* asan_fake_stack = nullptr;
  const void* stack_bottom = nullptr;
  std::size_t stack_size = 0;
};

Executor& Executor::instance() {
  // Never destroyed: its fibers stay parked in fiber_main until the process ends.
  static Executor* executor = new Executor;
  return *executor;
}

// All slots live in one array, so that visiting threads in order walks memory in order.
Executor::Executor()
    : slots_(std::make_unique<Slot[]>(kMaxBlockThreads)), host_(std::make_unique<Host>()) {}

void Executor::add_slot() {
  Slot* s = &slots_[slot_count_];
  s->thread.id = slot_count_;
  s->tsan_fiber = san::create_fiber();
  // Creating a boost fiber already enters its stack once; let TSan attribute that to the fiber.
  san::switch_to_fiber(s->tsan_fiber);
  s->fiber = bctx::fiber(std::allocator_arg, RecordingStack(&s->stack, slot_count_),
                         [this, s](bctx::fiber&& host) -> bctx::fiber {
                           // A fiber is invisible to ThreadSanitizer except inside the kernel.
                           san::ignore_begin();
                           host_->fiber = std::move(host);
                           fiber_main(*s);
                         });
  san::switch_to_fiber(host_->tsan_fiber);
  ++slot_count_;
}

void Executor::fiber_main(Slot& slot) {
  san::finish_switch(nullptr, &host_->stack_bottom, &host_->stack_size);
  for (;;) {
    run_thread(slot.thread);
    switch_to_host(slot);
  }
}

void Executor::resume(Slot& slot) {
  tl_context = &slot.thread.context;
  current_ = &slot;
  san::start_switch(&host_->asan_fake_stack, slot.stack_bottom(), slot.stack.size);
  san::switch_to_fiber(slot.tsan_fiber);
  slot.fiber = std::move(slot.fiber).resume();
  san::finish_switch(host_->asan_fake_stack, nullptr, nullptr);
  current_ = nullptr;
  tl_context = nullptr;
}

void Executor::switch_to_host(Slot& slot) {
  san::start_switch(&slot.asan_fake_stack, host_->stack_bottom, host_->stack_size);
  san::switch_to_fiber(host_->tsan_fiber);
  host_->fiber = std::move(host_->fiber).resume();
  san::finish_switch(slot.asan_fake_stack, &host_->stack_bottom, &host_->stack_size);
}

Thread& Executor::current() {
  if (current_ == nullptr) outside_kernel("a barrier or warp operation");
  return current_->thread;
}

void outside_kernel(const char* what) {
  throw Error(concat("simt: ", what, " used outside a kernel run by simt::launch"));
}

Thread& Executor::thread(unsigned id) { return slots_[id].thread; }

void Executor::wait(Thread& self, const char* name, const std::source_location& where) {
  self.waits_in = name;
  self.waits_at = where;
  switch_to_host(*current_);
  if (block_.aborting) throw Abort{};
}

void Executor::record_error(const Thread& self, const std::string& message) {
  if (!block_.error.empty()) return;
  const ThreadContext& c = self.context;
  block_.error =
      concat("simt: block ", format_dim(c.block_idx.x, c.block_idx.y, c.block_idx.z), " thread ",
             format_dim(c.thread_idx.x, c.thread_idx.y, c.thread_idx.z), ": ", message);
}

void Executor::fail(const Thread& self, const std::string& message) {
  record_error(self, message);
  throw Abort{};
}

void Executor::run_thread(Thread& self) {
  if (!block_.aborting) {
    san::acquire(&block_.start_token);
    std::string error;
    san::ignore_end();
    try {
      task_->run(task_->closure);
    } catch (const Abort&) {
      // The block was aborted; its error is already recorded.
    } catch (const std::exception& e) {
      error = concat("the kernel threw: ", e.what());
    } catch (...) {
      error = "the kernel threw an exception that is not a std::exception";
    }
    san::ignore_begin();
    if (!error.empty()) record_error(self, error);
    san::release(&block_.done_token);
  }
  thread_exited(self);
}

void Executor::thread_exited(Thread& self) {
  self.state = ThreadState::exited;
  Block& b = block_;
  if (b.exited++ == 0) b.first_exited = self.id;
  Warp& warp = b.warps[self.warp()];
  warp.exited |= 1u << self.lane();
  if (b.aborting) return;
  if (b.arrived > 0) {
    record_error(self,
                 concat("exited while ", b.arrived, " thread(s) wait at ", b.barrier_name, " (",
                        format_site(b.barrier_at), "); every thread of the block must reach it"));
    return;
  }
  for (unsigned waiting = warp.waiting; waiting != 0; waiting &= waiting - 1) {
    const Thread& other = thread(self.warp() * kWarpSize + std::countr_zero(waiting));
    if ((other.mask >> self.lane()) & 1u) {
      record_error(
          self, concat("exited while lane ", other.lane(), " waits for it in ", other.waits_in,
                       " (", format_site(other.waits_at), ") with mask ", format_mask(other.mask)));
      return;
    }
  }
}

void Executor::next_order(const BlockLaunch& launch, std::uint64_t& rng) {
  if (launch.order != ThreadOrder::random) return;
  for (std::size_t i = order_.size(); i > 1; --i) {
    std::swap(order_[i - 1], order_[splitmix64(rng) % i]);
  }
}

void Executor::run_block(const BlockLaunch& launch) {
  san::IgnoreScope ignore;
  // Launches from different OS threads take turns on this executor; switch back to the caller.
  host_->tsan_fiber = san::current_fiber();
  const unsigned size = launch.block_dim.x * launch.block_dim.y * launch.block_dim.z;
  while (slot_count_ < size) add_slot();

  block_ = Block{};
  block_.size = size;
  block_.warp_count = (size + kWarpSize - 1) / kWarpSize;
  for (unsigned w = 0; w < block_.warp_count; ++w) {
    const unsigned lanes = std::min(kWarpSize, size - w * kWarpSize);
    block_.warps[w].present = lanes == kWarpSize ? ~0u : (1u << lanes) - 1;
  }
  order_.resize(size);
  for (unsigned id = 0; id < size; ++id) {
    Thread& t = thread(id);
    const unsigned bx = launch.block_dim.x, by = launch.block_dim.y;
    t.context = {{id % bx, id / bx % by, id / (bx * by)},
                 launch.block_idx,
                 launch.block_dim,
                 launch.grid_dim,
                 launch.dynamic_smem};
    t.state = ThreadState::ready;
    t.waits_in = "";
    order_[id] = launch.order == ThreadOrder::reverse ? size - 1 - id : id;
  }
  task_ = launch.task;
  std::uint64_t rng = launch.seed;

  san::release(&block_.start_token);
  while (block_.exited < size) {
    next_order(launch, rng);
    bool progressed = false;
    for (unsigned id : order_) {
      if (thread(id).state != ThreadState::ready) continue;
      resume(slots_[id]);
      progressed = true;
      if (!block_.error.empty()) {
        abort_block();
        throw Error(block_.error);
      }
    }
    if (!progressed) {
      block_.error = deadlock_message();
      abort_block();
      throw Error(block_.error);
    }
  }
  san::acquire(&block_.done_token);
}

void Executor::abort_block() {
  block_.aborting = true;
  for (unsigned id = 0; id < block_.size; ++id) {
    if (thread(id).state != ThreadState::exited) resume(slots_[id]);
  }
  san::acquire(&block_.done_token);
}

std::string Executor::deadlock_message() const {
  // Group the waiting threads by where they wait, in thread order.
  struct Group {
    unsigned first;
    unsigned count;
  };
  std::map<std::string, Group> groups;
  std::vector<std::string> keys;
  for (unsigned id = 0; id < block_.size; ++id) {
    const Thread& t = slots_[id].thread;
    if (t.state != ThreadState::waiting) continue;
    const bool in_warp_op = (block_.warps[t.warp()].waiting >> t.lane()) & 1u;
    std::string key =
        concat(t.waits_in, in_warp_op ? concat("(mask ", format_mask(t.mask), ")") : "", " at ",
               format_site(t.waits_at));
    auto [it, inserted] = groups.try_emplace(key, Group{id, 0});
    if (inserted) keys.push_back(key);
    ++it->second.count;
  }
  const ThreadContext& c = slots_[0].thread.context;
  std::string message =
      concat("simt: deadlock in block ", format_dim(c.block_idx.x, c.block_idx.y, c.block_idx.z),
             ": no thread can proceed");
  for (const std::string& key : keys) {
    const Group& g = groups.at(key);
    const uint3 t = slots_[g.first].thread.context.thread_idx;
    message += concat("; thread ", format_dim(t.x, t.y, t.z),
                      g.count > 1 ? concat(" and ", g.count - 1, " other(s)") : std::string(),
                      " wait in ", key);
  }
  if (block_.exited > 0) {
    const uint3 t = slots_[block_.first_exited].thread.context.thread_idx;
    message +=
        concat("; ", block_.exited, " thread(s) exited, first thread ", format_dim(t.x, t.y, t.z));
  }
  return message;
}

std::string format_dim(unsigned x, unsigned y, unsigned z) {
  return concat("(", x, ",", y, ",", z, ")");
}

std::string format_mask(unsigned mask) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", mask);
  return text;
}

std::string format_site(const std::source_location& where) {
  return concat(where.file_name(), ":", where.line(), ":", where.column());
}

}  // namespace simt::detail
