// Kernels with planted bugs: the emulator must catch each one, for the right reason.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/portable.h"
#include "tests/simt/schedules.h"

namespace {

constexpr unsigned kFull = 0xffffffffu;

// The message of the simt::Error that `launch` throws; fails the test if it throws none.
template <typename F>
std::string error_of(F&& launch) {
  try {
    launch();
  } catch (const simt::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "the launch threw no simt::Error";
  return "";
}

// "file:line" as the emulator writes a source location of this file (before ":column").
std::string site(int line) { return std::string(__FILE__) + ":" + std::to_string(line); }

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

// Each test's kernel records the lines of its collectives here.
int line_a = 0, line_b = 0;

// A correct kernel, to show that the emulator recovers after an aborted launch.
__global__ void square(int* x) { x[threadIdx.x] *= x[threadIdx.x]; }

void expect_next_launch_runs() {
  std::vector<int> x = {1, 2, 3, 4};
  simt::launch(square, 1, 4, 0, nullptr, x.data());
  EXPECT_EQ(x, (std::vector<int>{1, 4, 9, 16}));
}

std::vector<std::uint32_t> bits(const std::vector<float>& v) {
  std::vector<std::uint32_t> b;
  for (float x : v) b.push_back(std::bit_cast<std::uint32_t>(x));
  return b;
}

// ---- missing barriers: results that depend on the schedule --------------------------------------
__global__ void read_neighbour(bool barrier, float* out) {
  float* s = dynamic_smem<float>();
  const int t = threadIdx.x, n = blockDim.x;
  s[t] = static_cast<float>(t);
  if (barrier) __syncthreads();
  out[t] = s[(t + 1) % n];
}

__global__ void read_lane_neighbour(bool barrier, float* out) {
  __shared__ float s[32];
  const int t = threadIdx.x;
  s[t] = static_cast<float>(t);
  if (barrier) __syncwarp();
  out[t] = s[t ^ 1];
}

template <typename Kernel>
std::vector<std::pair<std::string, std::vector<std::uint32_t>>> neighbours(Kernel kernel,
                                                                           bool barrier) {
  return simt_test::under_all_schedules([&] {
    std::vector<float> out(32, 0.0f);
    simt::launch(kernel, 1, 32, 32 * sizeof(float), nullptr, barrier, out.data());
    return bits(out);
  });
}

// In the ThreadSanitizer build the missing barrier is reported as a race before any result.
template <typename Kernel>
void expect_schedule_dependent(Kernel kernel) {
#if defined(__SANITIZE_THREAD__)
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(neighbours(kernel, false), "ThreadSanitizer: data race");
#else
  const auto broken = neighbours(kernel, false);
  ASSERT_EQ(broken[0].first, "forward");
  ASSERT_EQ(broken[1].first, "reverse");
  EXPECT_NE(broken[0].second, broken[1].second);
#endif
  const auto fixed = neighbours(kernel, true);
  for (const auto& [name, out] : fixed) EXPECT_EQ(out, fixed[0].second) << name;
}

TEST(SimtPlantedBugs, MissingSyncthreadsChangesResultsAcrossSchedules) {
  expect_schedule_dependent(read_neighbour);
}

TEST(SimtPlantedBugs, MissingSyncwarpChangesResultsAcrossSchedules) {
  expect_schedule_dependent(read_lane_neighbour);
}

// ---- barriers -----------------------------------------------------------------------------------
__global__ void divergent_barrier() {
  if (threadIdx.x < 16) {
    if (threadIdx.x == 0) line_a = __LINE__ + 1;
    __syncthreads();
  } else {
    if (threadIdx.x == 16) line_b = __LINE__ + 1;
    __syncthreads();
  }
}

TEST(SimtPlantedBugs, DivergentBarrierNamesBothLines) {
  for (const simt::Schedule& schedule : simt::all_schedules()) {
    simt_test::ScheduleGuard guard;
    simt::set_schedule(schedule);
    const std::string e = error_of([] { simt::launch(divergent_barrier, 2, 32, 0, nullptr); });
    EXPECT_HAS(e, "divergent barrier");
    EXPECT_HAS(e, site(line_a));
    EXPECT_HAS(e, site(line_b));
  }
  simt::set_schedule(simt::parse_schedule("forward"));
  const std::string e = error_of([] { simt::launch(divergent_barrier, 2, 32, 0, nullptr); });
  EXPECT_HAS(e, "simt: block (0,0,0) thread (16,0,0): divergent barrier: waits at __syncthreads (");
  EXPECT_HAS(e, "while thread (0,0,0) waits at __syncthreads (");
  simt::clear_schedule();
  expect_next_launch_runs();
}

__global__ void exit_before_barrier(int* out) {
  if (threadIdx.x == 5) return;
  if (threadIdx.x == 0) line_a = __LINE__ + 1;
  __syncthreads();
  out[threadIdx.x] = 1;
}

TEST(SimtPlantedBugs, BarrierAfterSomeThreadsExited) {
  std::vector<int> out(64);
  for (const simt::Schedule& schedule : simt::all_schedules()) {
    simt_test::ScheduleGuard guard;
    simt::set_schedule(schedule);
    const std::string e =
        error_of([&] { simt::launch(exit_before_barrier, 1, 64, 0, nullptr, out.data()); });
    EXPECT_HAS(e, "exited");
    EXPECT_HAS(e, "__syncthreads (" + site(line_a) + ":");
  }
  simt::set_schedule(simt::parse_schedule("forward"));
  EXPECT_HAS(error_of([&] { simt::launch(exit_before_barrier, 1, 64, 0, nullptr, out.data()); }),
             "thread (5,0,0): exited while 5 thread(s) wait at __syncthreads");
  simt::set_schedule(simt::parse_schedule("reverse"));
  EXPECT_HAS(error_of([&] { simt::launch(exit_before_barrier, 1, 64, 0, nullptr, out.data()); }),
             "thread (5,0,0): exited while 58 thread(s) wait at __syncthreads");
  simt::clear_schedule();
  expect_next_launch_runs();
}

__global__ void deadlock() {
  if (threadIdx.x < 16) {
    if (threadIdx.x == 0) line_a = __LINE__ + 1;
    __syncwarp();
  } else {
    if (threadIdx.x == 16) line_b = __LINE__ + 1;
    __syncthreads();
  }
}

TEST(SimtPlantedBugs, DeadlockNamesBlockThreadsAndLines) {
  const std::string e = error_of([] { simt::launch(deadlock, dim3(1, 2), 32, 0, nullptr); });
  EXPECT_HAS(e, "simt: deadlock in block (0,0,0): no thread can proceed; ");
  EXPECT_HAS(
      e, "thread (0,0,0) and 15 other(s) wait in __syncwarp(mask 0xffffffff) at " + site(line_a));
  EXPECT_HAS(e, "thread (16,0,0) and 15 other(s) wait in __syncthreads at " + site(line_b));
  expect_next_launch_runs();
}

// ---- warp masks ---------------------------------------------------------------------------------
__global__ void shuffle_with_mask(unsigned mask, int* out) {
  out[threadIdx.x] = __shfl_down_sync(mask, static_cast<int>(threadIdx.x), 1);
}

TEST(SimtPlantedBugs, MaskWithoutTheCallingLane) {
  std::vector<int> out(32);
  const std::string e = error_of(
      [&] { simt::launch(shuffle_with_mask, 1, 32, 0, nullptr, 0xfffffffeu, out.data()); });
  EXPECT_HAS(e, "thread (0,0,0): __shfl_down_sync(mask 0xfffffffe) at ");
  EXPECT_HAS(e, "the mask does not include the calling lane 0");
}

TEST(SimtPlantedBugs, FullMaskInAPartialWarp) {
  simt_test::ScheduleGuard guard;
  simt::set_schedule(simt::parse_schedule("forward"));
  std::vector<int> out(48);
  const std::string e =
      error_of([&] { simt::launch(shuffle_with_mask, 1, 48, 0, nullptr, kFull, out.data()); });
  EXPECT_HAS(e, "thread (32,0,0): __shfl_down_sync(mask 0xffffffff)");
  EXPECT_HAS(e,
             "the mask names lanes 16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31 that do not "
             "exist (warp 1 of a block of 48 threads has lanes 0,1,2,3,4,5,6,7,8,9,10,11,12,"
             "13,14,15)");
  expect_next_launch_runs();
}

__global__ void upper_half_exits(int* out) {
  if (threadIdx.x >= 16) return;
  out[threadIdx.x] = __shfl_sync(kFull, static_cast<int>(threadIdx.x), 0);
}

TEST(SimtPlantedBugs, MaskNamingExitedLanes) {
  std::vector<int> out(32);
  simt_test::ScheduleGuard guard;
  simt::set_schedule(simt::parse_schedule("forward"));
  EXPECT_HAS(error_of([&] { simt::launch(upper_half_exits, 1, 32, 0, nullptr, out.data()); }),
             "thread (16,0,0): exited while lane 0 waits for it in __shfl_sync");
  simt::set_schedule(simt::parse_schedule("reverse"));
  EXPECT_HAS(error_of([&] { simt::launch(upper_half_exits, 1, 32, 0, nullptr, out.data()); }),
             "thread (15,0,0): __shfl_sync(mask 0xffffffff) at");
  EXPECT_HAS(
      error_of([&] { simt::launch(upper_half_exits, 1, 32, 0, nullptr, out.data()); }),
      "the mask names lanes 16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31 that have exited");
}

__global__ void masks_disagree(int* out) {
  const unsigned mask = threadIdx.x < 16 ? kFull : 0xfffffffeu;
  if (threadIdx.x == 0) line_a = __LINE__ + 1;
  out[threadIdx.x] = __shfl_xor_sync(mask, static_cast<int>(threadIdx.x), 1);
}

__global__ void operations_disagree(int* out) {
  if (threadIdx.x % 2 == 0) {
    if (threadIdx.x == 0) line_a = __LINE__ + 1;
    out[threadIdx.x] = __shfl_xor_sync(kFull, 1, 1);
  } else {
    if (threadIdx.x == 1) line_b = __LINE__ + 1;
    out[threadIdx.x] = static_cast<int>(__ballot_sync(kFull, 1));
  }
}

TEST(SimtPlantedBugs, LanesDisagreeOnTheMaskOrTheOperation) {
  std::vector<int> out(32);
  // A forward run first: lanes 0 and 1 arrive before the error, recording their lines.
  simt::set_schedule(simt::parse_schedule("forward"));
  const std::string masks =
      error_of([&] { simt::launch(masks_disagree, 1, 32, 0, nullptr, out.data()); });
  const int masks_line = line_a;
  const std::string operations =
      error_of([&] { simt::launch(operations_disagree, 1, 32, 0, nullptr, out.data()); });
  EXPECT_HAS(masks, "thread (16,0,0): lanes disagree: lane 16 in __shfl_xor_sync(mask 0xfffffffe)");
  EXPECT_HAS(operations,
             "thread (1,0,0): lanes disagree: lane 1 in __ballot_sync(mask 0xffffffff)");
  for (const simt::Schedule& schedule : simt::all_schedules()) {
    simt_test::ScheduleGuard guard;
    simt::set_schedule(schedule);
    std::string e = error_of([&] { simt::launch(masks_disagree, 1, 32, 0, nullptr, out.data()); });
    EXPECT_HAS(e, "lanes disagree");
    EXPECT_HAS(e, "(mask 0xffffffff) at " + site(masks_line));
    EXPECT_HAS(e, "(mask 0xfffffffe) at " + site(masks_line));
    e = error_of([&] { simt::launch(operations_disagree, 1, 32, 0, nullptr, out.data()); });
    EXPECT_HAS(e, "lanes disagree");
    EXPECT_HAS(e, "__shfl_xor_sync(mask 0xffffffff) at " + site(line_a));
    EXPECT_HAS(e, "__ballot_sync(mask 0xffffffff) at " + site(line_b));
  }
  simt::clear_schedule();
  expect_next_launch_runs();
}

__global__ void bad_width(int* out) { out[threadIdx.x] = __shfl_sync(kFull, 1, 0, 3); }

TEST(SimtPlantedBugs, ShuffleWidthNotAPowerOfTwo) {
  std::vector<int> out(32);
  EXPECT_HAS(error_of([&] { simt::launch(bad_width, 1, 32, 0, nullptr, out.data()); }),
             "width 3 is not a power of two in [1, 32]");
}

// ---- launch configuration
// ------------------------------------------------------------------------
__global__ void noop() {}

TEST(SimtPlantedBugs, BlockTooLarge) {
  EXPECT_HAS(
      error_of([] { simt::launch(noop, 1, 1025, 0, nullptr); }),
      "simt: block (1025,1,1) has 1025 threads; the limits are 1024 threads and (1024,1024,64)");
  EXPECT_HAS(error_of([] { simt::launch(noop, 1, dim3(64, 32), 0, nullptr); }), "2048 threads");
  EXPECT_HAS(error_of([] { simt::launch(noop, 1, dim3(1, 1, 65), 0, nullptr); }), "(1,1,65)");
  EXPECT_HAS(error_of([] { simt::launch(noop, dim3(1, 0), 32, 0, nullptr); }),
             "every dimension must be at least 1");
  EXPECT_HAS(error_of([] { simt::launch(noop, dim3(1, 65536), 32, 0, nullptr); }),
             "grid (1,65536,1) exceeds the limits");
  simt::launch(noop, 1, dim3(8, 8, 16), 0, nullptr);  // 1024 threads is fine
}

__global__ void fill_shared(int n, int* out) {
  unsigned char* s = dynamic_smem<unsigned char>();
  for (int i = threadIdx.x; i < n; i += blockDim.x) s[i] = static_cast<unsigned char>(i);
  __syncthreads();
  if (threadIdx.x == 0) out[0] = s[n - 1];
}

TEST(SimtPlantedBugs, TooMuchSharedMemory) {
  std::vector<int> out(1);
  EXPECT_HAS(error_of([&] {
               simt::launch(fill_shared, 1, 64, 48 * 1024 + 1, nullptr, 48 * 1024 + 1, out.data());
             }),
             "simt: 49153 bytes of dynamic shared memory exceed the kernel's limit of 49152 bytes "
             "(raise it with simt::set_max_dynamic_smem)");
  simt::launch(fill_shared, 1, 64, 48 * 1024, nullptr, 48 * 1024, out.data());
  EXPECT_EQ(out[0], (48 * 1024 - 1) % 256);

  simt::set_max_dynamic_smem(fill_shared, 100 * 1024);
  simt::launch(fill_shared, 1, 64, 100 * 1024, nullptr, 100 * 1024, out.data());
  EXPECT_EQ(out[0], (100 * 1024 - 1) % 256);
  EXPECT_HAS(
      error_of([&] { simt::launch(fill_shared, 1, 64, 100 * 1024 + 1, nullptr, 10, out.data()); }),
      "exceed the kernel's limit of 102400 bytes");
  // Another kernel keeps the default limit.
  EXPECT_HAS(error_of([] { simt::launch(noop, 1, 32, 64 * 1024, nullptr); }), "limit of 49152");
  EXPECT_HAS(error_of([] { simt::set_max_dynamic_smem(noop, 227 * 1024 + 1); }),
             "simt: set_max_dynamic_smem(232449 bytes): the limit is 232448 bytes");
}

// ---- misuse -------------------------------------------------------------------------------------
void throw_from_device() { throw std::runtime_error("boom"); }

__global__ void throwing(int* out) {
  if (threadIdx.x == 3) throw_from_device();
  out[threadIdx.x] = 1;
}

TEST(SimtPlantedBugs, ExceptionInsideAKernel) {
  std::vector<int> out(8);
  EXPECT_HAS(error_of([&] { simt::launch(throwing, 1, 8, 0, nullptr, out.data()); }),
             "simt: block (0,0,0) thread (3,0,0): the kernel threw: boom");
  expect_next_launch_runs();
}

__global__ void nested_launch() { simt::launch(noop, 1, 1, 0, nullptr); }

TEST(SimtPlantedBugs, LaunchInsideAKernel) {
  EXPECT_HAS(error_of([] { simt::launch(nested_launch, 1, 2, 0, nullptr); }),
             "launch() called inside a kernel");
  expect_next_launch_runs();
}

TEST(SimtPlantedBugs, BuiltinsOutsideAKernel) {
  EXPECT_HAS(error_of([] { (void)threadIdx.x; }), "simt: threadIdx used outside a kernel");
  EXPECT_HAS(error_of([] { __syncthreads(); }), "used outside a kernel");
}

}  // namespace
