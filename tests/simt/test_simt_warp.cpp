// Warp shuffles and votes: the lane rules of PTX shfl.sync, every value type, partial masks.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/portable.h"
#include "tests/simt/schedules.h"

namespace {

constexpr unsigned kFull = 0xffffffffu;

enum Op { kIdx, kUp, kDown, kXor };

__global__ void shuffle(int op, int arg, int width, int* out) {
  const int lane = threadIdx.x;
  const int v = 100 + lane;
  switch (op) {
    case kIdx:
      out[lane] = __shfl_sync(kFull, v, arg, width);
      break;
    case kUp:
      out[lane] = __shfl_up_sync(kFull, v, static_cast<unsigned>(arg), width);
      break;
    case kDown:
      out[lane] = __shfl_down_sync(kFull, v, static_cast<unsigned>(arg), width);
      break;
    case kXor:
      out[lane] = __shfl_xor_sync(kFull, v, arg, width);
      break;
  }
}

// The CUDA Programming Guide's description of each shuffle; PTX reads only the low five bits of the
// lane argument, so a delta of 33 acts as 1.
int expected_source(int op, int lane, int arg, int width) {
  const int start = lane / width * width;
  switch (op) {
    case kIdx:
      return start + ((arg % width) + width) % width;
    case kUp: {
      const int delta = arg & 31;
      return lane - start >= delta ? lane - delta : lane;
    }
    case kDown: {
      const int delta = arg & 31;
      return lane - start + delta < width ? lane + delta : lane;
    }
    default: {
      const int src = lane ^ (arg & 31);
      return src < start + width ? src : lane;  // earlier segments yes, later ones no
    }
  }
}

TEST(SimtWarp, ShuffleLaneRulesForEveryWidth) {
  for (int op : {kIdx, kUp, kDown, kXor}) {
    for (int width : {1, 2, 4, 8, 16, 32}) {
      for (int arg : {0, 1, 3, 5, 7, 15, 16, 31, 33, -1}) {
        if (arg < 0 && op != kIdx) continue;
        std::vector<int> expected(32);
        for (int lane = 0; lane < 32; ++lane) {
          expected[lane] = 100 + expected_source(op, lane, arg, width);
        }
        const auto results = simt_test::under_all_schedules([&] {
          std::vector<int> out(32, 0);
          simt::launch(shuffle, 1, 32, 0, nullptr, op, arg, width, out.data());
          return out;
        });
        for (const auto& [name, out] : results) {
          EXPECT_EQ(out, expected)
              << "op " << op << " width " << width << " arg " << arg << " schedule " << name;
        }
      }
    }
  }
}

TEST(SimtWarp, XorReachesIntoEarlierSegmentsOnly) {
  // Width 16, lane mask 16: the upper half reads the lower half, the lower half keeps its value.
  std::vector<int> out(32);
  simt::launch(shuffle, 1, 32, 0, nullptr, static_cast<int>(kXor), 16, 16, out.data());
  for (int lane = 0; lane < 16; ++lane) EXPECT_EQ(out[lane], 100 + lane);
  for (int lane = 16; lane < 32; ++lane) EXPECT_EQ(out[lane], 100 + lane - 16);
}

// Every lane reads lane 31 - lane: the bits of any value type arrive unchanged.
template <typename T>
__global__ void reverse_lanes(const T* in, T* out) {
  out[threadIdx.x] = __shfl_sync(kFull, in[threadIdx.x], 31 - static_cast<int>(threadIdx.x));
}

template <typename T>
void expect_reversed(const std::vector<T>& in) {
  std::vector<T> out(32);
  simt::launch(reverse_lanes<T>, 1, 32, 0, nullptr, in.data(), out.data());
  for (int lane = 0; lane < 32; ++lane) {
    EXPECT_EQ(std::memcmp(&out[lane], &in[31 - lane], sizeof(T)), 0) << "lane " << lane;
  }
}

TEST(SimtWarp, ShufflesMoveEveryValueType) {
  std::vector<float> f(32);
  std::vector<double> d(32);
  std::vector<int> i(32);
  std::vector<unsigned> u(32);
  std::vector<long long> ll(32);
  std::vector<__nv_bfloat16> bf(32);
  std::vector<__half> h(32);
  std::vector<__nv_bfloat162> bf2(32);
  std::vector<__half2> h2(32);
  for (int lane = 0; lane < 32; ++lane) {
    f[lane] = 1.0f / (lane + 3);
    d[lane] = 1.0 / (lane + 7) + 1e-12 * lane;
    i[lane] = -1000 * lane;
    u[lane] = 0x80000000u + lane;
    ll[lane] = (1ll << 40) * lane - 5;
    bf[lane] = __float2bfloat16(0.25f * lane - 3.0f);
    h[lane] = __float2half(0.125f * lane - 1.0f);
    bf2[lane] = __floats2bfloat162_rn(lane, -lane);
    h2[lane] = __floats2half2_rn(0.5f * lane, 2.0f);
  }
  expect_reversed(f);
  expect_reversed(d);
  expect_reversed(i);
  expect_reversed(u);
  expect_reversed(ll);
  expect_reversed(bf);
  expect_reversed(h);
  expect_reversed(bf2);
  expect_reversed(h2);
}

__global__ void votes(unsigned* ballots, int* any, int* all) {
  const int t = threadIdx.x, lane = t % warpSize;
  ballots[t] = __ballot_sync(kFull, lane % 3 == 0);
  any[2 * t] = __any_sync(kFull, lane == 31);
  any[2 * t + 1] = __any_sync(kFull, lane > 40);
  all[2 * t] = __all_sync(kFull, lane < 32);
  all[2 * t + 1] = __all_sync(kFull, lane != 5);
}

TEST(SimtWarp, Votes) {
  const auto results = simt_test::under_all_schedules([] {
    std::vector<unsigned> ballots(64);
    std::vector<int> any(128), all(128);
    simt::launch(votes, 1, 64, 0, nullptr, ballots.data(), any.data(), all.data());
    return std::make_tuple(ballots, any, all);
  });
  std::vector<int> expected_vote;
  for (int t = 0; t < 64; ++t) expected_vote.insert(expected_vote.end(), {1, 0});
  for (const auto& [name, r] : results) {
    EXPECT_EQ(std::get<0>(r), std::vector<unsigned>(64, 0x49249249u)) << name;
    EXPECT_EQ(std::get<1>(r), expected_vote) << name;
    EXPECT_EQ(std::get<2>(r), expected_vote) << name;
  }
}

// The two halves of a warp shuffle and vote independently, each within its own mask; a value read
// from a lane outside the mask is undefined, which the emulator makes all-ones bits.
__global__ void half_warps(int* sums, unsigned* ballots, int* outside) {
  const int lane = threadIdx.x;
  const unsigned mask = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  int v = lane;
  for (int offset = 8; offset > 0; offset /= 2) v += __shfl_down_sync(mask, v, offset, 16);
  if (lane % 16 == 0) sums[lane / 16] = v;
  ballots[lane] = __ballot_sync(mask, lane % 2 == 0);
  outside[lane] = __shfl_sync(mask, lane, lane < 16 ? 20 : 3);
}

TEST(SimtWarp, PartialMasksFormIndependentGroups) {
  const auto results = simt_test::under_all_schedules([] {
    std::vector<int> sums(2), outside(32);
    std::vector<unsigned> ballots(32);
    simt::launch(half_warps, 1, 32, 0, nullptr, sums.data(), ballots.data(), outside.data());
    return std::make_tuple(sums, ballots, outside);
  });
  for (const auto& [name, r] : results) {
    EXPECT_EQ(std::get<0>(r), (std::vector<int>{120, 376})) << name;  // 0+..+15, 16+..+31
    for (int lane = 0; lane < 32; ++lane) {
      EXPECT_EQ(std::get<1>(r)[lane], lane < 16 ? 0x00005555u : 0x55550000u) << name;
      EXPECT_EQ(std::get<2>(r)[lane], -1) << name;
    }
  }
}

// A partial last warp: its lanes exist only up to the block's end.
__global__ void partial_warp(int* out) {
  const unsigned mask = threadIdx.x < 32 ? kFull : 0x000000ffu;
  int v = threadIdx.x;
  for (int offset = 1; offset < 8; offset *= 2) v += __shfl_xor_sync(mask, v, offset, 8);
  out[threadIdx.x] = v;
}

TEST(SimtWarp, PartialLastWarp) {
  const auto results = simt_test::under_all_schedules([] {
    std::vector<int> out(40);
    simt::launch(partial_warp, 1, 40, 0, nullptr, out.data());
    return out;
  });
  std::vector<int> expected(40);
  for (int t = 0; t < 40; ++t) {
    const int start = t / 8 * 8;
    expected[t] = 8 * start + 28;  // start + (start+1) + ... + (start+7)
  }
  for (const auto& [name, out] : results) EXPECT_EQ(out, expected) << name;
}

// Lanes exchange through shared memory, ordered by __syncwarp.
__global__ void syncwarp_exchange(int* out) {
  __shared__ int s[64];
  const int t = threadIdx.x;
  s[t] = 10 * t;
  __syncwarp();
  const int mirrored = s[(t / 32) * 32 + 31 - t % 32];
  __syncwarp();
  s[t] = mirrored + 1;
  __syncwarp();
  out[t] = s[t ^ 1];
}

TEST(SimtWarp, SyncwarpOrdersSharedMemory) {
  std::vector<int> expected(64);
  for (int t = 0; t < 64; ++t) {
    const int u = t ^ 1;
    expected[t] = 10 * ((u / 32) * 32 + 31 - u % 32) + 1;
  }
  const auto results = simt_test::under_all_schedules([] {
    std::vector<int> out(64);
    simt::launch(syncwarp_exchange, 1, 64, 0, nullptr, out.data());
    return out;
  });
  for (const auto& [name, out] : results) EXPECT_EQ(out, expected) << name;
}

}  // namespace
