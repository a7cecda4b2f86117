#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"
#include "core/tensor.h"

namespace minivlm {
namespace {

TEST(Tensor, CreationAndMetadata) {
  Tensor t = Tensor::zeros({2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.desc(), "f32[2, 3, 4] on cpu");
  for (double v : t.to_double_vector()) EXPECT_EQ(v, 0.0);
  Tensor f = Tensor::full({2}, 2.5, DType::bf16);
  EXPECT_EQ(f.to_double_vector(), (std::vector<double>{2.5, 2.5}));
  EXPECT_EQ(Tensor::arange(4).to_int_vector(), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_THROW(Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2}), Error);
}

TEST(Tensor, HalfPrecisionConversionsMatchIeee) {
  // Bit patterns from the IEEE 754 binary16 and bfloat16 definitions.
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);       // largest finite half
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);       // rounds to infinity
  EXPECT_EQ(f32_to_f16(5.9604645e-8f), 0x0001);  // smallest subnormal 2^-24
  EXPECT_EQ(f16_to_f32(0x0001), 5.9604645e-8f);
  EXPECT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);  // a tie rounds to even
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.00390625f), 0x3f80);  // tie (1 + 2^-8) → even
  EXPECT_EQ(f32_to_bf16(1.01171875f), 0x3f82);  // 1 + 3·2^-8 tie → even (up)
  EXPECT_EQ(bf16_to_f32(0xc0a0), -5.0f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  Tensor t = Tensor::from_vector(std::vector<float>{0.1f, -3.0f, 1e-3f}, {3}, DType::f16);
  auto back = t.to(DType::f32).to_float_vector();
  EXPECT_NEAR(back[0], 0.1f, 1e-4);
  EXPECT_EQ(back[1], -3.0f);
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor tr = t.transpose(0, 1);
  EXPECT_EQ(tr.shape(), (Shape{3, 2}));
  EXPECT_FALSE(tr.is_contiguous());
  EXPECT_EQ(tr.contiguous().to_float_vector(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(t.slice(1, 1, 3).to_float_vector(), (std::vector<float>{1, 2, 4, 5}));
  EXPECT_EQ(t.slice(1, 0, 3, 2).to_float_vector(), (std::vector<float>{0, 2, 3, 5}));
  EXPECT_EQ(t.narrow(0, 1, 1).to_float_vector(), (std::vector<float>{3, 4, 5}));
  EXPECT_EQ(t.select(1, 2).to_float_vector(), (std::vector<float>{2, 5}));
  EXPECT_EQ(t.reshape({3, -1}).shape(), (Shape{3, 2}));
  EXPECT_EQ(t.permute({1, 0}).to_float_vector(), tr.to_float_vector());
  EXPECT_EQ(t.unsqueeze(0).shape(), (Shape{1, 2, 3}));
  // Writing through a view changes the base.
  t.select(0, 1).fill_(9);
  EXPECT_EQ(t.to_float_vector(), (std::vector<float>{0, 1, 2, 9, 9, 9}));
  EXPECT_EQ(tr.storage(), t.storage());
  // Reshaping a non-contiguous view copies.
  Tensor r = tr.reshape({6});
  EXPECT_EQ(r.to_float_vector(), (std::vector<float>{0, 9, 1, 9, 2, 9}));
  EXPECT_NE(r.storage(), t.storage());
}

TEST(Tensor, CopyConvertsDtypesAcrossStrides) {
  Tensor src = Tensor::from_vector(std::vector<float>{1.5f, -2.25f, 3, 4}, {2, 2}).transpose(0, 1);
  Tensor dst = Tensor::empty({2, 2}, DType::bf16);
  dst.copy_(src);
  EXPECT_EQ(dst.to_float_vector(), (std::vector<float>{1.5f, 3, -2.25f, 4}));
  Tensor i = Tensor::empty({2, 2}, DType::i64);
  i.copy_(src);
  EXPECT_EQ(i.to_int_vector(), (std::vector<int64_t>{1, 3, -2, 4}));
}

TEST(Tensor, ErrorsNameShapes) {
  Tensor a = Tensor::zeros({2, 3});
  try {
    a.reshape({4, 2});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[4, 2]"), std::string::npos) << e.what();
  }
  try {
    a.copy_(Tensor::zeros({3, 2}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f32[3, 2]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("f32[2, 3]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(a.transpose(0, 2), Error);
  EXPECT_THROW(a.data<double>(), Error);
  EXPECT_THROW(Tensor().shape(), Error);
}

TEST(Tensor, UnavailableDeviceIsAClearError) {
  try {
    Tensor::empty({2}, DType::f32, Device{DeviceType::cuda, 0});
    if (device_available(DeviceType::cuda))
      SUCCEED();
    else
      FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda"), std::string::npos) << e.what();
  }
  EXPECT_EQ(parse_device("cuda-emu").type, DeviceType::cuda_emu);
  EXPECT_THROW(parse_device("tpu"), Error);
}

TEST(Rng, ReproducibleAndSerializable) {
  Rng a(42), b(42);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a.next_u64(), b.next_u64());
  a.normal();  // leaves a spare
  const std::string st = a.state();
  const double n1 = a.normal(), u1 = a.uniform();
  Rng c(0);
  c.set_state(st);
  EXPECT_EQ(c.normal(), n1);
  EXPECT_EQ(c.uniform(), u1);
  // Moments of 20k normals: a broken transform would be far off.
  Rng r(1);
  double s = 0, s2 = 0;
  for (int i = 0; i < 20000; ++i) {
    const double x = r.normal();
    s += x;
    s2 += x * x;
  }
  EXPECT_NEAR(s / 20000, 0.0, 0.03);
  EXPECT_NEAR(s2 / 20000, 1.0, 0.04);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(r.below(7), 7u);
}

}  // namespace
}  // namespace minivlm
