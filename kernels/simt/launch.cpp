// run_grid: checks a launch like the CUDA runtime does, then runs its blocks one at a time.
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <numeric>

#include "error.h"
#include "executor.h"
#include "launch.h"
#include "sanitizer.h"

namespace simt::detail {

namespace {

// Static __shared__ variables are plain statics, one per kernel, so two OS threads must never run
// blocks at the same time: launches from different threads take turns.
std::mutex& launch_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::mutex& limits_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::map<KernelId, std::size_t>& smem_limits() {
  static std::map<KernelId, std::size_t> limits;
  return limits;
}

std::size_t smem_limit(KernelId kernel) {
  std::lock_guard lock(limits_mutex());
  const auto it = smem_limits().find(kernel);
  return it == smem_limits().end() ? kDefaultDynamicSmem : it->second;
}

std::string format_dim3(dim3 d) { return format_dim(d.x, d.y, d.z); }

void check_launch(dim3 grid, dim3 block, std::size_t smem_bytes, KernelId kernel) {
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  if (threads == 0 || grid.x == 0 || grid.y == 0 || grid.z == 0) {
    throw Error(concat("simt: launch with grid ", format_dim3(grid), " and block ",
                       format_dim3(block), ": every dimension must be at least 1"));
  }
  if (threads > kMaxBlockThreads || block.x > 1024 || block.y > 1024 || block.z > 64) {
    throw Error(concat("simt: block ", format_dim3(block), " has ", threads,
                       " threads; the limits are 1024 threads and (1024,1024,64)"));
  }
  if (grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
    throw Error(
        concat("simt: grid ", format_dim3(grid), " exceeds the limits (2147483647,65535,65535)"));
  }
  const std::size_t limit = smem_limit(kernel);
  if (smem_bytes > limit) {
    throw Error(
        concat("simt: ", smem_bytes,
               " bytes of dynamic shared memory exceed the kernel's"
               " limit of ",
               limit, " bytes",
               limit < kMaxDynamicSmem ? " (raise it with simt::set_max_dynamic_smem)" : ""));
  }
}

std::uint64_t mix(std::uint64_t seed, std::uint64_t block) {
  std::uint64_t z = seed ^ (block * 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 33)) * 0xff51afd7ed558ccdull;
  return z ^ (z >> 33);
}

std::vector<std::uint64_t> block_order(std::uint64_t count, const Schedule& schedule) {
  std::vector<std::uint64_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  if (schedule.shuffle_blocks) {
    std::uint64_t state = schedule.seed;
    for (std::uint64_t i = count; i > 1; --i) {
      std::swap(order[i - 1], order[mix(state, i) % i]);
      ++state;
    }
  }
  return order;
}

// 128-byte aligned, exactly smem_bytes long so that AddressSanitizer catches reads past its end.
struct SharedMemory {
  explicit SharedMemory(std::size_t bytes)
      : bytes(bytes),
        data(static_cast<std::byte*>(::operator new (bytes, std::align_val_t{128}))) {}
  ~SharedMemory() { ::operator delete (data, std::align_val_t{128}); }
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;
  std::size_t bytes;
  std::byte* data;
};

}  // namespace

void run_grid(dim3 grid, dim3 block, std::size_t smem_bytes, const GridTask& task) {
  if (tl_context != nullptr) {
    throw Error("simt: launch() called inside a kernel; dynamic parallelism is not emulated");
  }
  check_launch(grid, block, smem_bytes, task.kernel);
  const Schedule schedule = current_schedule();
  std::lock_guard lock(launch_mutex());
  Executor& executor = Executor::instance();
  SharedMemory smem(smem_bytes);
  const std::uint64_t blocks = 1ull * grid.x * grid.y * grid.z;
  for (std::uint64_t b : block_order(blocks, schedule)) {
    {
      san::IgnoreScope ignore;
      std::memset(smem.data, 0xff, smem.bytes);
    }
    const uint3 block_idx{static_cast<unsigned>(b % grid.x),
                          static_cast<unsigned>(b / grid.x % grid.y),
                          static_cast<unsigned>(b / (1ull * grid.x * grid.y))};
    executor.run_block(
        {block_idx, block, grid, smem.data, schedule.threads, mix(schedule.seed, b), &task});
  }
}

void set_max_dynamic_smem(KernelId kernel, std::size_t bytes) {
  if (bytes > kMaxDynamicSmem) {
    throw Error(concat("simt: set_max_dynamic_smem(", bytes, " bytes): the limit is ",
                       kMaxDynamicSmem, " bytes"));
  }
  std::lock_guard lock(limits_mutex());
  smem_limits()[kernel] = bytes;
}

}  // namespace simt::detail
