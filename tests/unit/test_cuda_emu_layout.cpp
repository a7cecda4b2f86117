// The CUDA back-end's layout and optimizer host code on the emulated device: copies into and out
// of strided device views with dtype conversion, row gathers and scatters, SiLU, the bias add, the
// pixel-shuffle kernel, concat, and the device AdamW step and gradient norm, each against the CPU
// back-end.
#include <gtest/gtest.h>

#include <vector>

#include "core/device.h"
#include "cuda_emu_util.h"
#include "optim/adamw.h"

namespace minivlm {
namespace {

using testing::close;
using testing::expect_same;
using testing::kEmu;
using testing::randn;

TEST(CudaEmuLayout, CopyIntoStridedDeviceViewsConvertsAndLeavesTheRest) {
  const Tensor base = randn({4, 6, 5}, 1), src = randn({6, 4}, 2);
  Tensor cpu = base.clone(), dev = base.to(kEmu);
  // A transposed destination two levels deep, from a host source and from a device source.
  cpu.select(2, 3).transpose(0, 1).copy_(src);
  dev.select(2, 3).transpose(0, 1).copy_(src);
  EXPECT_TRUE(close(dev, cpu, 0.0));
  cpu.narrow(1, 1, 3).copy_(cpu.narrow(1, 2, 3).clone());
  dev.narrow(1, 1, 3).copy_(dev.narrow(1, 2, 3).clone());
  EXPECT_TRUE(close(dev, cpu, 0.0));
  // A strided device source read back to the host, and a fill of a strided device view.
  EXPECT_TRUE(close(dev.permute({2, 0, 1}).to(kCPU), cpu.permute({2, 0, 1}), 0.0));
  cpu.select(0, 2).fill_(-1.5);
  dev.select(0, 2).fill_(-1.5);
  EXPECT_TRUE(close(dev, cpu, 0.0));
  // f32 ↔ bf16 on the device rounds as the host does (round to nearest even), also strided.
  const Tensor bf_cpu = cpu.transpose(0, 2).to(DType::bf16);
  const Tensor bf_dev = dev.transpose(0, 2).to(DType::bf16);
  EXPECT_EQ(bf_dev.device(), kEmu);
  EXPECT_TRUE(close(bf_dev, bf_cpu, 0.0));
  EXPECT_TRUE(close(bf_dev.to(DType::f32), bf_cpu.to(DType::f32), 0.0));
  // Integer tensors move and gather as bits.
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, -2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(ids.to(kEmu).transpose(0, 1).to_int_vector(), ids.transpose(0, 1).to_int_vector());
}

TEST(CudaEmuLayout, ConcatGatherScatterSilu) {
  const Tensor a = randn({2, 3, 4}, 3), b = randn({2, 1, 4}, 4);
  expect_same({a, b}, [](const auto& t) { return ops::concat({t[0], t[1]}, 1); });
  expect_same({a}, [](const auto& t) { return ops::concat({t[0], t[0]}, 2); });
  const Tensor x = randn({7, 5}, 5), src = randn({3, 5}, 6);
  const Tensor idx = Tensor::from_vector(std::vector<int64_t>{4, 0, 4, 6}, {4});
  expect_same({x, idx}, [](const auto& t) { return ops::gather_rows(t[0], t[1]); });
  const Tensor rows = Tensor::from_vector(std::vector<int64_t>{5, 1, 2}, {3});
  expect_same({x, rows, src}, [](const auto& t) { return ops::scatter_rows(t[0], t[1], t[2]); });
  expect_same({x}, [](const auto& t) { return ops::silu(t[0]); });
}

TEST(CudaEmuLayout, BiasAddAndOneElementBroadcast) {
  const Tensor a = randn({3, 2, 300}, 12), bias = randn({300}, 13), one = randn({1}, 14);
  expect_same({a, bias}, [](const auto& t) { return ops::add(t[0], t[1]); });
  expect_same({a, one}, [](const auto& t) { return ops::add(t[0], t[1]); });
  // More rows than one chunk of the bias gradient's column sum.
  const Tensor tall = randn({2, 300, 7}, 15), narrow = randn({7}, 16);
  expect_same({tall, narrow}, [](const auto& t) { return ops::add(t[0], t[1]); });
}

TEST(CudaEmuLayout, PixelShuffleKernelAndPatchEmbed) {
  const Tensor x = randn({2, 36, 5}, 8);  // G = 6
  expect_same({x}, [](const auto& t) { return ops::pixel_shuffle(t[0], 2); });
  expect_same({x}, [](const auto& t) { return ops::pixel_shuffle(t[0], 3); });
  const Tensor px = randn({2, 3, 8, 8}, 9), w = randn({5, 3, 4, 4}, 10), bias = randn({5}, 11);
  expect_same({px, w, bias}, [](const auto& t) { return ops::patch_embed(t[0], t[1], t[2]); });
}

// Three AdamW steps with clipping on the device equal the CPU optimizer's (fp32), and with bf16
// parameters the fp32 master weights stay within bf16 rounding of the fp32 run.
TEST(CudaEmuLayout, AdamWAndGradNormMatchCpu) {
  const std::vector<Shape> shapes = {{37, 5}, {300}, {3}};
  ParamList cpu, dev, half;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const Tensor w = randn(shapes[i], 20 + i);
    for (ParamList* l : {&cpu, &dev, &half}) {
      Tensor t = w.clone();
      t.set_requires_grad(true);
      l->push_back({"p" + std::to_string(i), t});
    }
  }
  AdamW oc(cpu, {}), od(dev, {}), oh(half, {});
  od.to(kEmu, DType::f32);
  oh.to(kEmu, DType::bf16);
  EXPECT_EQ(dev[0].tensor.device(), kEmu);  // the moved parameters are the caller's tensors
  EXPECT_EQ(half[1].tensor.dtype(), DType::bf16);
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      const Tensor g = randn(shapes[i], 100 + 10 * step + i);
      cpu[i].tensor.set_grad(g);
      dev[i].tensor.set_grad(g.to(kEmu));
      half[i].tensor.set_grad(g.to(DType::bf16).to(kEmu));
    }
    const double nc = grad_norm(cpu), nd = grad_norm(dev), nh = grad_norm(half);
    EXPECT_NEAR(nd, nc, 1e-6 * nc);
    EXPECT_NEAR(nh, nc, 1e-2 * nc);  // bf16 gradients: 8 mantissa bits
    oc.step(1e-2, clip_factor(nc, 5.0));
    od.step(1e-2, clip_factor(nd, 5.0));
    oh.step(1e-2, clip_factor(nh, 5.0));
  }
  for (size_t i = 0; i < shapes.size(); ++i) {
    EXPECT_TRUE(close(dev[i].tensor, cpu[i].tensor, 1e-6)) << "parameter " << i;
    EXPECT_TRUE(close(oh.master(i), cpu[i].tensor, 1e-2)) << "master " << i;
    EXPECT_EQ(oh.master(i).dtype(), DType::f32);
    // The bf16 parameter is its master rounded.
    EXPECT_TRUE(close(half[i].tensor, oh.master(i).to(DType::bf16), 0.0)) << "parameter " << i;
  }
}

}  // namespace
}  // namespace minivlm
