// The warp's tensor-core multiply (simt::mma_m16n8k16_bf16): D = A·B + C with the fragments laid
// out as PTX's mma.m16n8k16 documents them, under every schedule, and its rules.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/common.cuh"
#include "tests/simt/schedules.h"

namespace {

using minivlm::kernels::bf16;
using minivlm::kernels::emu::pack_bf16x2;

// A [tiles][16][16] row-major, B [tiles][16][8] (k by n), C and D [tiles][16][8]; warp w of the
// block multiplies tile w, with its fragments filled element by element from PTX's layout tables
// (g = lane / 4, t = lane % 4), then repeats the multiply `repeat` times accumulating into D.
__global__ void mma_tiles(float* d_out, const bf16* a, const bf16* b, const float* c, int repeat) {
  const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
  const bf16* A = a + warp * 256;
  const bf16* B = b + warp * 128;
  const float* C = c + warp * 128;
  const int g = lane / 4, t = lane % 4;
  std::uint32_t fa[4], fb[2];
  float acc[4];
  for (int i = 0; i < 4; ++i) {
    const int row = g + 8 * (i % 2), col = 2 * t + 8 * (i / 2);
    fa[i] = pack_bf16x2(A[row * 16 + col], A[row * 16 + col + 1]);
    acc[i] = C[(g + 8 * (i / 2)) * 8 + 2 * t + i % 2];
  }
  for (int i = 0; i < 2; ++i) {
    const int k = 2 * t + 8 * i;
    fb[i] = pack_bf16x2(B[k * 8 + g], B[(k + 1) * 8 + g]);
  }
  for (int r = 0; r < repeat; ++r) simt::mma_m16n8k16_bf16(acc, fa, fb, acc);
  for (int i = 0; i < 4; ++i) d_out[warp * 128 + (g + 8 * (i / 2)) * 8 + 2 * t + i % 2] = acc[i];
}

__global__ void mma_half_warp(float* d_out) {
  std::uint32_t fa[4] = {}, fb[2] = {};
  float acc[4] = {};
  simt::mma_m16n8k16_bf16(acc, fa, fb, acc);
  d_out[threadIdx.x] = acc[0];
}

__global__ void mma_divergent(float* d_out) {
  std::uint32_t fa[4] = {}, fb[2] = {};
  float acc[4] = {};
  if (threadIdx.x % 2 == 0) simt::mma_m16n8k16_bf16(acc, fa, fb, acc);
  d_out[threadIdx.x] = acc[0];
}

struct Tiles {
  std::vector<bf16> a, b;
  std::vector<float> c;
};

Tiles random_tiles(int tiles, unsigned seed) {
  Tiles x;
  unsigned s = seed;
  const auto next = [&] {
    s = s * 1664525u + 1013904223u;
    return static_cast<float>((s >> 8) % 2001) / 1000.0f - 1.0f;
  };
  for (int i = 0; i < tiles * 256; ++i) x.a.push_back(__float2bfloat16_rn(next()));
  for (int i = 0; i < tiles * 128; ++i) x.b.push_back(__float2bfloat16_rn(next()));
  for (int i = 0; i < tiles * 128; ++i) x.c.push_back(next());
  return x;
}

std::vector<float> run(const Tiles& x, int tiles, int repeat) {
  std::vector<float> d(static_cast<std::size_t>(tiles) * 128, -1.0f);
  simt::launch(mma_tiles, dim3(1), dim3(static_cast<unsigned>(32 * tiles)), 0, nullptr, d.data(),
               x.a.data(), x.b.data(), x.c.data(), repeat);
  return d;
}

TEST(SimtMma, MultipliesTheFragmentsAsLaidOut) {
  constexpr int kTiles = 4, kRepeat = 3;
  const Tiles x = random_tiles(kTiles, 7);
  const auto results = simt_test::under_all_schedules([&] { return run(x, kTiles, kRepeat); });
  for (int w = 0; w < kTiles; ++w) {
    for (int m = 0; m < 16; ++m) {
      for (int n = 0; n < 8; ++n) {
        double ab = 0;
        for (int k = 0; k < 16; ++k) {
          ab += static_cast<double>(__bfloat162float(x.a[w * 256 + m * 16 + k])) *
                __bfloat162float(x.b[w * 128 + k * 8 + n]);
        }
        const double want = x.c[w * 128 + m * 8 + n] + kRepeat * ab;
        for (const auto& [schedule, d] : results) {
          ASSERT_NEAR(d[w * 128 + m * 8 + n], want, 1e-5 * (1 + std::abs(want)))
              << schedule << " tile " << w << " row " << m << " column " << n;
        }
      }
    }
  }
  for (const auto& [schedule, d] : results) EXPECT_EQ(d, results.front().second) << schedule;
}

TEST(SimtMma, OneNonZeroElementLandsWhereTheLayoutSays) {
  // A = e_(5, 11), B = e_(11, 3): D is zero but for D[5][3] = 2·3.
  Tiles x;
  x.a.assign(256, __float2bfloat16_rn(0.0f));
  x.b.assign(128, __float2bfloat16_rn(0.0f));
  x.c.assign(128, 0.0f);
  x.a[5 * 16 + 11] = __float2bfloat16_rn(2.0f);
  x.b[11 * 8 + 3] = __float2bfloat16_rn(3.0f);
  const std::vector<float> d = run(x, 1, 1);
  for (int i = 0; i < 128; ++i) EXPECT_EQ(d[i], i == 5 * 8 + 3 ? 6.0f : 0.0f) << "element " << i;
}

TEST(SimtMma, NeedsTheWholeWarp) {
  std::vector<float> d(32);
  try {
    simt::launch(mma_half_warp, dim3(1), dim3(16), 0, nullptr, d.data());
    FAIL() << "a half warp's mma was accepted";
  } catch (const simt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs all 32 lanes"), std::string::npos) << e.what();
  }
  try {
    simt::launch(mma_divergent, dim3(1), dim3(32), 0, nullptr, d.data());
    FAIL() << "a divergent mma was accepted";
  } catch (const simt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("mma_m16n8k16_bf16"), std::string::npos) << e.what();
  }
}

}  // namespace
