// What only the sanitizer builds catch: out-of-bounds shared memory (AddressSanitizer and
// UndefinedBehaviorSanitizer) and data races that no schedule shows (ThreadSanitizer). In other
// builds these tests skip.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/portable.h"

#if defined(__SANITIZE_THREAD__)
// A report must end the process, so that the death test sees it (ctest sets this too).
extern "C" const char* __tsan_default_options() { return "halt_on_error=1"; }
#endif

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#if defined(__SANITIZE_THREAD__)
constexpr bool kThreadSanitizer = true;
#else
constexpr bool kThreadSanitizer = false;
#endif

// Out of sight of UndefinedBehaviorSanitizer's bounds and object-size checks.
[[gnu::noinline]] void store(float* p, unsigned i, float v) { p[i] = v; }

// One thread too many writes past the end of a static shared array: UndefinedBehaviorSanitizer
// sees the index when the array is indexed directly, AddressSanitizer sees any other access.
__global__ void static_shared_overflow(bool direct, float* out) {
  __shared__ float s[64];
  if (direct) {
    s[threadIdx.x] = 1.0f;
  } else {
    store(s, threadIdx.x, 1.0f);
  }
  __syncthreads();
  out[threadIdx.x] = threadIdx.x < 64 ? s[threadIdx.x] : 0.0f;
}

__global__ void dynamic_shared_overflow(float* out) {
  float* s = dynamic_smem<float>();
  s[threadIdx.x] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x];
}

TEST(SimtAddressSanitizer, SharedMemoryOutOfBounds) {
  if (!kAddressSanitizer) GTEST_SKIP() << "needs the AddressSanitizer build";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::vector<float> out(65);
  // In bounds is fine.
  simt::launch(static_shared_overflow, 1, 64, 0, nullptr, true, out.data());
  simt::launch(static_shared_overflow, 1, 64, 0, nullptr, false, out.data());
  simt::launch(dynamic_shared_overflow, 1, 64, 64 * sizeof(float), nullptr, out.data());
  EXPECT_EQ(out[63], 1.0f);
  EXPECT_DEATH(simt::launch(static_shared_overflow, 1, 65, 0, nullptr, true, out.data()),
               "runtime error: index 64 out of bounds for type 'float \\[64\\]'");
  EXPECT_DEATH(simt::launch(static_shared_overflow, 1, 65, 0, nullptr, false, out.data()),
               "AddressSanitizer: global-buffer-overflow");
  EXPECT_DEATH(
      simt::launch(dynamic_shared_overflow, 1, 65, 64 * sizeof(float), nullptr, out.data()),
      "AddressSanitizer: heap-buffer-overflow");
}

// Two threads write the same shared word and every thread reads it with no barrier in between.
__global__ void racy_word(int* out) {
  __shared__ int word;
  if (threadIdx.x < 2) word = static_cast<int>(threadIdx.x);
  out[threadIdx.x] = word;
}

// The same exchange ordered by barriers and by __syncwarp: no race.
__global__ void ordered_word(int* out) {
  __shared__ int word;
  if (threadIdx.x == 0) word = 7;
  __syncthreads();
  out[threadIdx.x] = word;
  __syncthreads();
  if (threadIdx.x == 1) word = 8;
  __syncwarp();
  out[32 + threadIdx.x] = word;
}

TEST(SimtThreadSanitizer, RaceOnASharedWord) {
  if (!kThreadSanitizer) GTEST_SKIP() << "needs the ThreadSanitizer build";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::vector<int> out(64);
  simt::launch(ordered_word, 1, 32, 0, nullptr, out.data());
  EXPECT_EQ(out[0], 7);
  EXPECT_EQ(out[63], 8);
  EXPECT_DEATH(simt::launch(racy_word, 1, 32, 0, nullptr, out.data()),
               "ThreadSanitizer: data race");
}

// Every thread increments a shared counter without atomics: the emulator never interleaves the
// read and the write, so the count is right under every schedule, but updates get lost on a GPU.
__global__ void lost_updates(int* out) {
  __shared__ int count;
  if (threadIdx.x == 0) count = 0;
  __syncthreads();
  count += 1;
  __syncthreads();
  if (threadIdx.x == 0) out[0] = count;
}

TEST(SimtThreadSanitizer, LostUpdate) {
  if (!kThreadSanitizer) GTEST_SKIP() << "needs the ThreadSanitizer build";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::vector<int> out(1);
  EXPECT_DEATH(simt::launch(lost_updates, 1, 32, 0, nullptr, out.data()),
               "ThreadSanitizer: data race");
}

}  // namespace
