// Atomics and device intrinsics on the host.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "kernels/portable.h"
#include "tests/simt/schedules.h"

namespace {

struct Sums {
  float f = 0;
  double d = 0;
  int i = 0;
  unsigned u = 0;
  unsigned long long ull = 0;
  __nv_bfloat16 bf = __float2bfloat16(0.0f);
  __half h = __float2half(0.0f);
  __nv_bfloat162 bf2 = __floats2bfloat162_rn(0.0f, 0.0f);
  __half2 h2 = __floats2half2_rn(0.0f, 0.0f);
};

__global__ void add_everything(Sums* s, int* old_ints) {
  const int t = threadIdx.x;
  atomicAdd(&s->f, 0.5f * t);  // small multiples of 0.5: exact in any order
  atomicAdd(&s->d, 0.25 * t);
  old_ints[t] = atomicAdd(&s->i, 1);
  atomicAdd(&s->u, 3u);
  atomicAdd(&s->ull, 1ull << 40);
  atomicAdd(&s->bf, __float2bfloat16(1.0f));
  atomicAdd(&s->h, __float2half(2.0f));
  atomicAdd(&s->bf2, __floats2bfloat162_rn(1.0f, -1.0f));
  atomicAdd(&s->h2, __floats2half2_rn(0.5f, 4.0f));
}

TEST(SimtAtomics, AddOnEveryType) {
  const int n = 64;
  for (const simt::Schedule& schedule : simt::all_schedules()) {
    simt_test::ScheduleGuard guard;
    simt::set_schedule(schedule);
    Sums s;
    std::vector<int> old(n);
    simt::launch(add_everything, 1, n, 0, nullptr, &s, old.data());
    EXPECT_EQ(s.f, 0.5f * 2016);
    EXPECT_EQ(s.d, 0.25 * 2016);
    EXPECT_EQ(s.i, n);
    EXPECT_EQ(s.u, 3u * n);
    EXPECT_EQ(s.ull, (1ull << 40) * n);
    EXPECT_EQ(__bfloat162float(s.bf), 64.0f);
    EXPECT_EQ(__half2float(s.h), 128.0f);
    EXPECT_EQ(__low2float(s.bf2), 64.0f);
    EXPECT_EQ(__high2float(s.bf2), -64.0f);
    EXPECT_EQ(__low2float(s.h2), 32.0f);
    EXPECT_EQ(__high2float(s.h2), 256.0f);
    std::sort(old.begin(), old.end());
    std::vector<int> ranks(n);
    std::iota(ranks.begin(), ranks.end(), 0);
    EXPECT_EQ(old, ranks) << schedule.name();
  }
}

TEST(SimtAtomics, Bfloat16AddRoundsLikeTheDevice) {
  // 256 + 1 is not representable in bf16 (8 significant bits): round to nearest even gives 256.
  __nv_bfloat16 x = __float2bfloat16(256.0f);
  EXPECT_EQ(__bfloat162float(atomicAdd(&x, __float2bfloat16(1.0f))), 256.0f);
  EXPECT_EQ(__bfloat162float(x), 256.0f);
  atomicAdd(&x, __float2bfloat16(3.0f));
  EXPECT_EQ(__bfloat162float(x), 260.0f);
}

__global__ void claim(int* slot, int* old, int* maximum, int* minimum, unsigned* bits) {
  const int t = threadIdx.x;
  old[t] = atomicCAS(slot, -1, t);
  atomicMax(maximum, (t * 37) % 64 - 20);
  atomicMin(minimum, (t * 37) % 64 - 20);
  atomicOr(&bits[0], 1u << (t % 32));
  atomicAnd(&bits[1], ~(1u << (t % 16)));
  atomicXor(&bits[2], 1u << (t % 8));
  atomicSub(&bits[3], 2u);
}

TEST(SimtAtomics, CompareAndSwapAndFriends) {
  for (const char* name : {"forward", "reverse"}) {
    simt_test::ScheduleGuard guard;
    simt::set_schedule(simt::parse_schedule(name));
    int slot = -1, maximum = -1000, minimum = 1000;
    std::vector<int> old(64);
    std::vector<unsigned> bits = {0, ~0u, 0, 1000};
    simt::launch(claim, 1, 64, 0, nullptr, &slot, old.data(), &maximum, &minimum, bits.data());
    const int winner = std::string(name) == "forward" ? 0 : 63;  // the first thread to run
    EXPECT_EQ(slot, winner);
    for (int t = 0; t < 64; ++t) EXPECT_EQ(old[t], t == winner ? -1 : winner) << t;
    EXPECT_EQ(maximum, 43);
    EXPECT_EQ(minimum, -20);
    EXPECT_EQ(bits, (std::vector<unsigned>{~0u, 0xffff0000u, 0u, 1000u - 128u}));
  }
}

__global__ void exchange(int* slot, int* old) { old[threadIdx.x] = atomicExch(slot, threadIdx.x); }

TEST(SimtAtomics, ExchangeChainsThroughEveryThread) {
  int slot = -1;
  std::vector<int> old(32);
  simt::launch(exchange, 1, 32, 0, nullptr, &slot, old.data());
  old.push_back(slot);
  std::sort(old.begin(), old.end());
  std::vector<int> expected(33);
  std::iota(expected.begin(), expected.end(), -1);
  EXPECT_EQ(old, expected);
}

// ---- intrinsics ---------------------------------------------------------------------------------
TEST(SimtIntrinsics, IntegerBits) {
  EXPECT_EQ(__popc(0xf0f0f0f0u), 16);
  EXPECT_EQ(__popcll(~0ull), 64);
  EXPECT_EQ(__clz(0), 32);
  EXPECT_EQ(__clz(1), 31);
  EXPECT_EQ(__clz(-1), 0);
  EXPECT_EQ(__clzll(1ll << 40), 23);
  EXPECT_EQ(__ffs(0), 0);
  EXPECT_EQ(__ffs(8), 4);
  EXPECT_EQ(__ffs(static_cast<int>(0x80000000u)), 32);
  EXPECT_EQ(__ffsll(1ll << 40), 41);
  EXPECT_EQ(__brev(1u), 0x80000000u);
  EXPECT_EQ(__brev(0x0000ff01u), 0x80ff0000u);
  EXPECT_EQ(__umulhi(0x80000000u, 6u), 3u);
  EXPECT_EQ(__mulhi(-0x40000000, 8), -2);
}

TEST(SimtIntrinsics, FloatFunctions) {
  EXPECT_EQ(__float_as_int(1.0f), 0x3f800000);
  EXPECT_EQ(__float_as_uint(-2.0f), 0xc0000000u);
  EXPECT_EQ(__int_as_float(0x40490fdb), 3.14159274f);
  EXPECT_EQ(__uint_as_float(0x7f800000u), INFINITY);
  EXPECT_EQ(rsqrtf(4.0f), 0.5f);
  EXPECT_EQ(rsqrt(0.25), 2.0);
  EXPECT_EQ(__fdividef(1.0f, 8.0f), 0.125f);
  EXPECT_EQ(__frcp_rn(4.0f), 0.25f);
  EXPECT_EQ(__fmaf_rn(2.0f, 3.0f, 1.0f), 7.0f);
  EXPECT_EQ(__saturatef(-0.5f), 0.0f);
  EXPECT_EQ(__saturatef(1.5f), 1.0f);
  EXPECT_EQ(__saturatef(0.25f), 0.25f);
  EXPECT_EQ(__saturatef(NAN), 0.0f);
  EXPECT_EQ(__float2int_rn(2.5f), 2);  // ties to even
  EXPECT_EQ(__float2int_rn(3.5f), 4);
  EXPECT_EQ(__float2int_rz(-2.7f), -2);
  float s = 0, c = 0;
  __sincosf(0.0f, &s, &c);
  EXPECT_EQ(s, 0.0f);
  EXPECT_EQ(c, 1.0f);
  EXPECT_NEAR(__expf(1.0f), 2.7182817f, 1e-6f);
  EXPECT_TRUE(isnan(NAN));
  const float x = 3.0f;
  EXPECT_EQ(__ldg(&x), 3.0f);
}

TEST(SimtIntrinsics, MinAndMaxFollowCudaTypeRules) {
  EXPECT_EQ(max(3, 7), 7);
  EXPECT_EQ(min(-3, 7), -3);
  EXPECT_EQ(max(-1, 2u), 0xffffffffu);  // int and unsigned compare as unsigned, as in CUDA
  EXPECT_EQ(min(1.5f, 2), 1.5f);
  EXPECT_EQ(max(2.0, 1.0f), 2.0);
  EXPECT_EQ(max(NAN, 1.0f), 1.0f);  // fmaxf: a NaN operand loses
}

TEST(SimtIntrinsics, HalfPrecisionMath) {
  // Values rounded to the nearest 16-bit number: e in half is 2.71875 (spacing 2^-9 on [2, 4)),
  // sqrt(2) in bf16 is 1.4140625 (8 significant bits).
  EXPECT_EQ(__half2float(hexp(__float2half(1.0f))), 2.71875f);
  EXPECT_EQ(__bfloat162float(hsqrt(__float2bfloat16(2.0f))), 1.4140625f);
  EXPECT_EQ(__bfloat162float(hrsqrt(__float2bfloat16(4.0f))), 0.5f);
  EXPECT_EQ(__half2float(hlog(__float2half(1.0f))), 0.0f);
  EXPECT_EQ(__half2float(hrcp(__float2half(8.0f))), 0.125f);
  EXPECT_EQ(__half2float(hfloor(__float2half(-1.5f))), -2.0f);
  EXPECT_EQ(__bfloat162float(
                __hfma(__float2bfloat16(3.0f), __float2bfloat16(5.0f), __float2bfloat16(-1.0f))),
            14.0f);
  const __half2 r = h2sqrt(__floats2half2_rn(4.0f, 9.0f));
  EXPECT_EQ(__low2float(r), 2.0f);
  EXPECT_EQ(__high2float(r), 3.0f);
  const __nv_bfloat162 f =
      __hfma2(__floats2bfloat162_rn(2.0f, 3.0f), __floats2bfloat162_rn(4.0f, 5.0f),
              __floats2bfloat162_rn(1.0f, 1.0f));
  EXPECT_EQ(__low2float(f), 9.0f);
  EXPECT_EQ(__high2float(f), 16.0f);
}

// The same intrinsics inside a kernel, as kernels use them.
__global__ void softmax_row(const float* x, float* y, int n) {
  __shared__ float maximum, total;
  if (threadIdx.x == 0) {
    maximum = -INFINITY;
    total = 0.0f;
  }
  __syncthreads();
  float m = -INFINITY;
  for (int i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, __ldg(&x[i]));
  for (int offset = 16; offset > 0; offset /= 2)
    m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, offset));
  if (threadIdx.x == 0) maximum = m;
  __syncthreads();
  float sum = 0.0f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) sum += __expf(x[i] - maximum);
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (threadIdx.x == 0) total = sum;
  __syncthreads();
  for (int i = threadIdx.x; i < n; i += blockDim.x)
    y[i] = __fdividef(__expf(x[i] - maximum), total);
}

TEST(SimtIntrinsics, InsideAKernel) {
  const int n = 100;
  std::vector<float> x(n), expected(n);
  double total = 0;
  for (int i = 0; i < n; ++i) {
    x[i] = std::sin(0.3f * i) * 4.0f;
    total += std::exp(static_cast<double>(x[i]));
  }
  for (int i = 0; i < n; ++i)
    expected[i] = static_cast<float>(std::exp(static_cast<double>(x[i])) / total);
  const auto results = simt_test::under_all_schedules([&] {
    std::vector<float> y(n);
    simt::launch(softmax_row, 1, 32, 0, nullptr, x.data(), y.data(), n);
    return y;
  });
  for (const auto& [name, y] : results) {
    EXPECT_EQ(y, results[0].second) << name;
    for (int i = 0; i < n; ++i) EXPECT_NEAR(y[i], expected[i], 1e-6f) << name << " " << i;
  }
}

}  // namespace
