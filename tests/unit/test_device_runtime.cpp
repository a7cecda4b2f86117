// What the op table (test_op_table.cpp) does not cover on the devices under test: holding tensors,
// copies into and out of strided device views with dtype conversion, the device AdamW step and
// gradient norm against the CPU's, and the CUDA runtime's bf16 GEMM on the emulated device.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/device.h"
#include "cuda/runtime.h"
#include "device_test_util.h"
#include "optim/adamw.h"

namespace minivlm {
namespace {

using testing::close;
using testing::kEmu;
using testing::randn;

class DeviceRuntime : public ::testing::TestWithParam<Device> {};

TEST_P(DeviceRuntime, IsAvailableAndHoldsTensors) {
  const Device dev = GetParam();
  EXPECT_TRUE(device_available(dev.type));
  const Tensor t = Tensor::full({3, 5}, 2.5, DType::f32, dev);
  EXPECT_EQ(t.device(), dev);
  EXPECT_EQ(t.to_float_vector(), std::vector<float>(15, 2.5f));
  const Tensor x = randn({4, 6}, 1);
  EXPECT_TRUE(close(x.to(dev).permute({1, 0}).contiguous(), x.permute({1, 0}).contiguous()));
}

TEST_P(DeviceRuntime, CopyIntoStridedViewsConvertsAndLeavesTheRest) {
  const Tensor base = randn({4, 6, 5}, 1), src = randn({6, 4}, 2);
  Tensor cpu = base.clone(), dev = base.to(GetParam());
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
  EXPECT_EQ(bf_dev.device(), GetParam());
  EXPECT_TRUE(close(bf_dev, bf_cpu, 0.0));
  EXPECT_TRUE(close(bf_dev.to(DType::f32), bf_cpu.to(DType::f32), 0.0));
  // Integer tensors move and gather as bits.
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, -2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(ids.to(GetParam()).transpose(0, 1).to_int_vector(),
            ids.transpose(0, 1).to_int_vector());
}

// Three AdamW steps with clipping on the device equal the CPU optimizer's (fp32), and with bf16
// parameters the fp32 master weights stay within bf16 rounding of the fp32 run.
TEST_P(DeviceRuntime, AdamWAndGradNormMatchCpu) {
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
  od.to(GetParam(), DType::f32);
  oh.to(GetParam(), DType::bf16);
  EXPECT_EQ(dev[0].tensor.device(), GetParam());  // the moved parameters are the caller's tensors
  EXPECT_EQ(half[1].tensor.dtype(), DType::bf16);
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      const Tensor g = randn(shapes[i], 100 + 10 * step + i);
      cpu[i].tensor.set_grad(g);
      dev[i].tensor.set_grad(g.to(GetParam()));
      half[i].tensor.set_grad(g.to(DType::bf16).to(GetParam()));
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

INSTANTIATE_TEST_SUITE_P(Devices, DeviceRuntime, ::testing::ValuesIn(testing::test_devices()),
                         [](const ::testing::TestParamInfo<Device>& info) {
                           return testing::param_name(info.param);
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(DeviceRuntime);

TEST(CudaRuntime, GemmBf16MatchesF32WithinRounding) {
  cuda::Runtime& rt = cuda::runtime_for(kEmu);
  const Tensor a = randn({3, 4}, 26), b = randn({4, 2}, 27);
  const Tensor ah = a.to(DType::bf16).to(kEmu), bh = b.to(DType::bf16).to(kEmu);
  Tensor c = Tensor::zeros({3, 2}, DType::bf16, kEmu);
  cuda::Runtime::Gemm g;
  g.dtype = DType::bf16;
  g.m = 3;
  g.n = 2;
  g.k = 4;
  g.a = ah.raw_data();
  g.lda = 4;
  g.b = bh.raw_data();
  g.ldb = 2;
  g.c = c.raw_data();
  g.ldc = 2;
  rt.gemm(g, nullptr);
  const Tensor want = ops::matmul(ah.to(kCPU).to(DType::f32), bh.to(kCPU).to(DType::f32));
  EXPECT_TRUE(testing::all_close(c.to_double_vector(), want.to_double_vector(), 1.0 / 128, 1e-6));
}

}  // namespace
}  // namespace minivlm
