// Correct kernels give the reference result, bit for bit, under every schedule.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "kernels/portable.h"
#include "tests/simt/schedules.h"

namespace {

constexpr unsigned kFull = 0xffffffffu;

std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<std::uint32_t> bits(const std::vector<float>& v) {
  std::vector<std::uint32_t> b(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) b[i] = std::bit_cast<std::uint32_t>(v[i]);
  return b;
}

template <typename T>
void expect_all_equal(const std::vector<std::pair<std::string, T>>& results, const T& expected) {
  for (const auto& [name, result] : results) EXPECT_EQ(result, expected) << "schedule " << name;
}

// ---- block reduction through shared memory -----------------------------------------------------
template <int kThreads>
__global__ void block_sum(const float* x, float* out, int n) {
  __shared__ float partial[kThreads];
  const int i = blockIdx.x * kThreads + threadIdx.x;
  partial[threadIdx.x] = i < n ? x[i] : 0.0f;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride)
      partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = partial[0];
}

TEST(SimtKernels, BlockReductionThroughSharedMemory) {
  constexpr int kThreads = 256;
  const int n = 1000, blocks = (n + kThreads - 1) / kThreads;
  const std::vector<float> x = random_floats(n, 1);
  // The same pairwise tree in float on the host gives the exact bits to expect.
  std::vector<float> expected(blocks);
  for (int b = 0; b < blocks; ++b) {
    std::vector<float> p(kThreads);
    for (int t = 0; t < kThreads; ++t) p[t] = b * kThreads + t < n ? x[b * kThreads + t] : 0.0f;
    for (int stride = kThreads / 2; stride > 0; stride /= 2) {
      for (int t = 0; t < stride; ++t) p[t] += p[t + stride];
    }
    expected[b] = p[0];
    double sum = 0;
    for (int t = 0; t < kThreads && b * kThreads + t < n; ++t) sum += x[b * kThreads + t];
    EXPECT_NEAR(expected[b], sum, 1e-4);
  }
  const auto results = simt_test::under_all_schedules([&] {
    std::vector<float> out(blocks, -1.0f);
    simt::launch(block_sum<kThreads>, blocks, kThreads, 0, nullptr, x.data(), out.data(), n);
    return bits(out);
  });
  expect_all_equal(results, bits(expected));
}

TEST(SimtKernels, LaunchesFromSeveralThreadsTakeTurns) {
  // Static __shared__ arrays are one per kernel, so launches from different OS threads must not
  // run blocks at the same time; each thread's sums come out right.
  constexpr int kThreads = 64;
  const int n = 4 * kThreads;
  std::vector<std::thread> workers;
  std::vector<int> failures(3, 0);
  for (int w = 0; w < 3; ++w) {
    workers.emplace_back([&, w] {
      std::vector<float> x(n, static_cast<float>(w + 1)), out(4);
      for (int round = 0; round < 20; ++round) {
        simt::launch(block_sum<kThreads>, 4, kThreads, 0, nullptr, x.data(), out.data(), n);
        for (float sum : out) failures[w] += sum != kThreads * (w + 1.0f);
      }
    });
  }
  for (std::thread& t : workers) t.join();
  EXPECT_EQ(failures, std::vector<int>(3, 0));
}

// ---- warp reductions through shuffles ----------------------------------------------------------
__global__ void warp_sums(const int* x, int* down_sums, int* xor_sums) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  int down = x[i];
  for (int offset = 16; offset > 0; offset /= 2) down += __shfl_down_sync(kFull, down, offset);
  if (threadIdx.x % warpSize == 0) down_sums[i / warpSize] = down;
  int butterfly = x[i];
  for (int mask = 1; mask < warpSize; mask *= 2)
    butterfly += __shfl_xor_sync(kFull, butterfly, mask);
  xor_sums[i] = butterfly;
}

TEST(SimtKernels, WarpReductionThroughShuffles) {
  const int blocks = 3, threads = 128, n = blocks * threads, warps = n / 32;
  std::vector<int> x(n);
  std::mt19937 rng(2);
  for (int& v : x) v = static_cast<int>(rng() % 2001) - 1000;
  std::vector<int> expected_down(warps), expected_xor(n);
  for (int w = 0; w < warps; ++w) {
    expected_down[w] = std::accumulate(x.begin() + w * 32, x.begin() + w * 32 + 32, 0);
    for (int l = 0; l < 32; ++l) expected_xor[w * 32 + l] = expected_down[w];
  }
  const auto results = simt_test::under_all_schedules([&] {
    std::vector<int> down(warps), butterfly(n);
    simt::launch(warp_sums, blocks, threads, 0, nullptr, x.data(), down.data(), butterfly.data());
    return std::make_pair(down, butterfly);
  });
  expect_all_equal(results, std::make_pair(expected_down, expected_xor));
}

// ---- block-wide inclusive scan: warp scans, then a scan of the warp totals ---------------------
__global__ void block_scan(const int* x, int* y) {
  __shared__ int warp_totals[32];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const int lane = threadIdx.x % warpSize, warp = threadIdx.x / warpSize;
  const int warps = blockDim.x / warpSize;
  int v = x[i];
  for (int d = 1; d < warpSize; d *= 2) {
    const int up = __shfl_up_sync(kFull, v, d);
    if (lane >= d) v += up;
  }
  if (lane == warpSize - 1) warp_totals[warp] = v;
  __syncthreads();
  if (warp == 0) {
    int t = lane < warps ? warp_totals[lane] : 0;
    for (int d = 1; d < warpSize; d *= 2) {
      const int up = __shfl_up_sync(kFull, t, d);
      if (lane >= d) t += up;
    }
    if (lane < warps) warp_totals[lane] = t;
  }
  __syncthreads();
  if (warp > 0) v += warp_totals[warp - 1];
  y[i] = v;
}

TEST(SimtKernels, BlockScan) {
  const int blocks = 2, threads = 256, n = blocks * threads;
  std::vector<int> x(n);
  std::mt19937 rng(3);
  for (int& v : x) v = static_cast<int>(rng() % 100);
  std::vector<int> expected(n);
  for (int b = 0; b < blocks; ++b) {
    std::inclusive_scan(x.begin() + b * threads, x.begin() + (b + 1) * threads,
                        expected.begin() + b * threads);
  }
  const auto results = simt_test::under_all_schedules([&] {
    std::vector<int> y(n);
    simt::launch(block_scan, blocks, threads, 0, nullptr, x.data(), y.data());
    return y;
  });
  expect_all_equal(results, expected);
}

// ---- histogram with shared and global atomics ---------------------------------------------------
constexpr int kBins = 16;

__global__ void histogram(const unsigned* x, int n, unsigned* bins) {
  __shared__ unsigned local[kBins];
  if (threadIdx.x < kBins) local[threadIdx.x] = 0;
  __syncthreads();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    atomicAdd(&local[x[i] % kBins], 1);
  }
  __syncthreads();
  if (threadIdx.x < kBins) atomicAdd(&bins[threadIdx.x], local[threadIdx.x]);
}

TEST(SimtKernels, AtomicHistogram) {
  const int n = 5000;
  std::vector<unsigned> x(n);
  std::mt19937 rng(4);
  for (unsigned& v : x) v = rng();
  std::vector<unsigned> expected(kBins, 0);
  for (unsigned v : x) ++expected[v % kBins];
  const auto results = simt_test::under_all_schedules([&] {
    std::vector<unsigned> bins(kBins, 0);
    simt::launch(histogram, 3, 96, 0, nullptr, x.data(), n, bins.data());
    return bins;
  });
  expect_all_equal(results, expected);
}

// ---- 2-D and 3-D indexing -----------------------------------------------------------------------
__global__ void coordinates(int* out, int* dims) {
  const unsigned gx = blockIdx.x * blockDim.x + threadIdx.x;
  const unsigned gy = blockIdx.y * blockDim.y + threadIdx.y;
  const unsigned gz = blockIdx.z * blockDim.z + threadIdx.z;
  const unsigned width = gridDim.x * blockDim.x, height = gridDim.y * blockDim.y;
  const unsigned block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const unsigned thread = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  out[(gz * height + gy) * width + gx] = static_cast<int>(block * 1000 + thread);
  if (block == 0 && thread == 0) {
    const unsigned d[6] = {gridDim.x, gridDim.y, gridDim.z, blockDim.x, blockDim.y, blockDim.z};
    for (int k = 0; k < 6; ++k) dims[k] = static_cast<int>(d[k]);
  }
}

TEST(SimtKernels, ThreeDimensionalIndexing) {
  const dim3 grid(3, 2, 2), block(4, 3, 2);  // 24 threads: one partial warp
  const int width = 12, height = 6, depth = 4;
  std::vector<int> expected(width * height * depth);
  for (int z = 0; z < depth; ++z) {
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        const int b = ((z / 2) * 2 + y / 3) * 3 + x / 4;
        const int t = ((z % 2) * 3 + y % 3) * 4 + x % 4;
        expected[(z * height + y) * width + x] = b * 1000 + t;
      }
    }
  }
  const auto results = simt_test::under_all_schedules([&] {
    std::vector<int> out(expected.size(), -1), dims(6, 0);
    simt::launch(coordinates, grid, block, 0, nullptr, out.data(), dims.data());
    return std::make_pair(out, dims);
  });
  expect_all_equal(results, std::make_pair(expected, std::vector<int>{3, 2, 2, 4, 3, 2}));
}

// ---- dynamic shared memory
// ------------------------------------------------------------------------
__global__ void dynamic_shared(std::uint32_t* before, float* after) {
  float* s = dynamic_smem<float>();
  const int t = threadIdx.x, n = blockDim.x;
  before[blockIdx.x * n + t] = std::bit_cast<std::uint32_t>(s[t]);
  __syncthreads();
  s[t] = static_cast<float>(blockIdx.x * n + t);
  __syncthreads();
  after[blockIdx.x * n + t] = s[n - 1 - t];
}

TEST(SimtKernels, DynamicSharedMemoryIsPoisonedBeforeEveryBlock) {
  const int blocks = 2, threads = 64;
  std::vector<float> expected_after(blocks * threads);
  for (int b = 0; b < blocks; ++b) {
    for (int t = 0; t < threads; ++t)
      expected_after[b * threads + t] = b * threads + threads - 1 - t;
  }
  const auto results = simt_test::under_all_schedules([&] {
    std::vector<std::uint32_t> before(blocks * threads, 0);
    std::vector<float> after(blocks * threads, 0.0f);
    simt::launch(dynamic_shared, blocks, threads, threads * sizeof(float), nullptr, before.data(),
                 after.data());
    return std::make_pair(before, after);
  });
  expect_all_equal(
      results,
      std::make_pair(std::vector<std::uint32_t>(blocks * threads, 0xffffffffu), expected_after));
  EXPECT_TRUE(std::isnan(std::bit_cast<float>(0xffffffffu)));
}

// ---- counting barriers
// ------------------------------------------------------------------------------
__global__ void barrier_votes(int* out) {
  const int t = threadIdx.x;
  int* mine = out + 5 * t;
  mine[0] = __syncthreads_count(t % 3 == 0);
  mine[1] = __syncthreads_and(t < 1000);
  mine[2] = __syncthreads_and(t != 17);
  mine[3] = __syncthreads_or(t == 17);
  mine[4] = __syncthreads_or(t > 1000);
}

TEST(SimtKernels, CountingBarriers) {
  const int threads = 100;
  std::vector<int> expected;
  for (int t = 0; t < threads; ++t) expected.insert(expected.end(), {34, 1, 0, 1, 0});
  const auto results = simt_test::under_all_schedules([&] {
    std::vector<int> out(5 * threads, -1);
    simt::launch(barrier_votes, 1, threads, 0, nullptr, out.data());
    return out;
  });
  expect_all_equal(results, expected);
}

// ---- the schedules themselves
// --------------------------------------------------------------------- Each thread's rank in the
// run order before and after a barrier, and each block's rank.
__global__ void record_order(unsigned* counter, unsigned* first, unsigned* second,
                             unsigned* block_rank) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  first[i] = atomicAdd(&counter[2 * blockIdx.x], 1);
  __syncthreads();
  second[i] = atomicAdd(&counter[2 * blockIdx.x + 1], 1);
  if (threadIdx.x == 0) block_rank[blockIdx.x] = atomicAdd(&counter[2 * gridDim.x], 1);
}

struct Order {
  std::vector<unsigned> first, second, blocks;
};

Order run_order(const simt::Schedule& schedule, unsigned blocks, unsigned threads) {
  simt_test::ScheduleGuard guard;
  simt::set_schedule(schedule);
  Order order{std::vector<unsigned>(blocks * threads), std::vector<unsigned>(blocks * threads),
              std::vector<unsigned>(blocks)};
  std::vector<unsigned> counter(2 * blocks + 1, 0);
  simt::launch(record_order, blocks, threads, 0, nullptr, counter.data(), order.first.data(),
               order.second.data(), order.blocks.data());
  return order;
}

std::vector<unsigned> iota(unsigned n) {
  std::vector<unsigned> v(n);
  std::iota(v.begin(), v.end(), 0u);
  return v;
}

TEST(SimtSchedules, ThreadOrders) {
  const unsigned threads = 64;
  const std::vector<unsigned> identity = iota(threads);
  const std::vector<unsigned> reversed(identity.rbegin(), identity.rend());

  const Order forward = run_order(simt::parse_schedule("forward"), 1, threads);
  EXPECT_EQ(forward.first, identity);
  EXPECT_EQ(forward.second, identity);
  const Order reverse = run_order(simt::parse_schedule("reverse"), 1, threads);
  EXPECT_EQ(reverse.first, reversed);
  EXPECT_EQ(reverse.second, reversed);

  // Random: a seeded permutation, drawn afresh after every barrier.
  const Order random = run_order(simt::parse_schedule("random:7"), 1, threads);
  EXPECT_NE(random.first, identity);
  EXPECT_NE(random.first, reversed);
  EXPECT_NE(random.second, random.first);
  std::vector<unsigned> sorted = random.first;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, identity);
  EXPECT_EQ(run_order(simt::parse_schedule("random:7"), 1, threads).first, random.first);
  EXPECT_NE(run_order(simt::parse_schedule("random:8"), 1, threads).first, random.first);
}

TEST(SimtSchedules, ShuffledBlocks) {
  const unsigned blocks = 16;
  const std::vector<unsigned> identity = iota(blocks);
  for (const char* name : {"forward", "reverse", "random"}) {
    EXPECT_EQ(run_order(simt::parse_schedule(name), blocks, 32).blocks, identity) << name;
  }
  const Order shuffled = run_order(simt::parse_schedule("blocks:3"), blocks, 32);
  EXPECT_NE(shuffled.blocks, identity);
  std::vector<unsigned> sorted = shuffled.blocks;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, identity);
  // Threads keep the forward order inside each block.
  for (unsigned b = 0; b < blocks; ++b) {
    for (unsigned t = 0; t < 32; ++t) EXPECT_EQ(shuffled.first[b * 32 + t], t);
  }
}

TEST(SimtSchedules, Names) {
  for (const simt::Schedule& s : simt::all_schedules()) {
    EXPECT_EQ(simt::parse_schedule(s.name()), s) << s.name();
  }
  EXPECT_EQ(simt::all_schedules().size(), 4u);
  EXPECT_EQ(simt::parse_schedule("random:42").seed, 42u);
  EXPECT_EQ(simt::parse_schedule("reverse").threads, simt::ThreadOrder::reverse);
  EXPECT_TRUE(simt::parse_schedule("blocks:5").shuffle_blocks);
}

TEST(SimtSchedules, BadNamesListTheValidOnes) {
  try {
    simt::parse_schedule("backward");
    FAIL() << "no error";
  } catch (const simt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("forward, reverse, random[:seed], blocks[:seed]"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(simt::parse_schedule("reverse:3"), simt::Error);
  EXPECT_THROW(simt::parse_schedule("random:x"), simt::Error);
}

TEST(SimtSchedules, EnvironmentVariableSetsTheDefault) {
  simt_test::ScheduleGuard guard;
  simt::clear_schedule();
  ASSERT_EQ(setenv("SIMT_SCHEDULE", "reverse", 1), 0);
  EXPECT_EQ(simt::current_schedule(), simt::parse_schedule("reverse"));
  std::vector<unsigned> counter(3, 0), first(4), second(4), block(1);
  simt::launch(record_order, 1, 4, 0, nullptr, counter.data(), first.data(), second.data(),
               block.data());
  EXPECT_EQ(first, (std::vector<unsigned>{3, 2, 1, 0}));
  simt::set_schedule(simt::parse_schedule("forward"));
  EXPECT_EQ(simt::current_schedule(), simt::parse_schedule("forward"));
  ASSERT_EQ(setenv("SIMT_SCHEDULE", "sideways", 1), 0);
  simt::clear_schedule();
  EXPECT_THROW(simt::current_schedule(), simt::Error);
  ASSERT_EQ(unsetenv("SIMT_SCHEDULE"), 0);
  EXPECT_EQ(simt::current_schedule(), simt::Schedule{});
}

}  // namespace
