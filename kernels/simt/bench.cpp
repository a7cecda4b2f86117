// simt_bench: what the emulator costs. Prints the median of repeated timings of a raw fiber
// switch, a collective's round trip through the scheduler, and whole blocks with barriers.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <boost/context/fiber.hpp>

#include "portable.h"

namespace {

using Clock = std::chrono::steady_clock;

template <typename F>
double median_ns(int repeats, double per, F&& run) {
  std::vector<double> ns;
  for (int r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    run();
    ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - start).count() / per);
  }
  std::nth_element(ns.begin(), ns.begin() + repeats / 2, ns.end());
  return ns[repeats / 2];
}

constexpr int kRounds = 10000;

// Two fibers handing control back and forth: the cost of boost.context alone.
double raw_switch_ns() {
  namespace bctx = boost::context;
  bctx::fiber other{[](bctx::fiber&& back) {
    for (;;) back = std::move(back).resume();
    return std::move(back);
  }};
  return median_ns(21, 2.0 * kRounds, [&] {
    for (int i = 0; i < kRounds; ++i) other = std::move(other).resume();
  });
}

__global__ void lone_syncwarps(int rounds) {
  for (int i = 0; i < rounds; ++i) __syncwarp(1u);
}

__global__ void one_barrier(int* out) {
  __shared__ int s[1024];
  s[threadIdx.x] = threadIdx.x;
  __syncthreads();
  out[threadIdx.x] = s[blockDim.x - 1 - threadIdx.x];
}

__global__ void warp_reduce(float* out) {
  float v = threadIdx.x;
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  out[threadIdx.x] = v;
}

}  // namespace

int main() {
  std::vector<int> ints(1024);
  std::vector<float> floats(1024);
  // Warm up: create the fiber slots once.
  simt::launch(one_barrier, 1, 1024, 0, nullptr, ints.data());

  std::printf("simt_bench (median of repeated runs; schedule %s)\n",
              simt::current_schedule().name().c_str());
  std::printf("  raw fiber switch (boost.context)        %8.1f ns\n", raw_switch_ns());
  std::printf("  collective round trip (1-lane syncwarp) %8.1f ns\n", median_ns(21, kRounds, [] {
                simt::launch(lone_syncwarps, 1, 1, 0, nullptr, kRounds);
              }));
  for (unsigned threads : {32u, 256u, 1024u}) {
    const double block =
        median_ns(201, 1, [&] { simt::launch(one_barrier, 1, threads, 0, nullptr, ints.data()); });
    std::printf("  %4u-thread block, one __syncthreads   %8.1f ns  (%.1f ns per thread)\n", threads,
                block, block / threads);
  }
  const double shuffles = median_ns(
      201, 1024.0 * 5, [&] { simt::launch(warp_reduce, 1, 1024, 0, nullptr, floats.data()); });
  std::printf("  __shfl_xor_sync, per lane and call      %8.1f ns\n", shuffles);
  return ints[0] == 1023 && floats[0] == 496.0f ? 0 : 1;
}
