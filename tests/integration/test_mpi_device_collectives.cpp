// The device communicator on cuda-emu, the code path of NCCL jobs with the collectives emulated:
// exact sums and broadcasts of emulated device memory on two and three MPI ranks, sums rounded to
// the storage type and added in rank order, buffers larger than one host message, mismatched
// buffers refused (by every rank of a sum, by the receivers of a broadcast), and the bucketed
// gradient reduction over it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "dist/communicator.h"
#include "dist/grad_reducer.h"
#include "mpi_util.h"
#include "ops/ops.h"

namespace minivlm {
namespace {

using testing::is_mpi_rank;
using testing::run_on_ranks;

const Device kEmu{DeviceType::cuda_emu, 0};

std::unique_ptr<Communicator> emu_world() {
  std::unique_ptr<Communicator> comm = make_communicator();
  use_device_communicator(comm, kEmu);
  return comm;
}

Tensor on_emu(const std::vector<float>& v, DType dtype = DType::f32) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}, dtype).to(kEmu);
}

TEST(DeviceCollectives, OneProcessKeepsItsCommunicator) {
  if (is_mpi_rank()) GTEST_SKIP() << "a single-process test";
  std::unique_ptr<Communicator> comm = make_communicator();
  const Communicator* alone = comm.get();
  use_device_communicator(comm, kEmu);
  EXPECT_EQ(comm.get(), alone);
  EXPECT_EQ(comm->name(), "single");
}

TEST(MpiDeviceCollectives, EmulatedSumsAndBroadcastsAcrossTwoRanks) {
  if (!is_mpi_rank()) return run_on_ranks(2);
  std::unique_ptr<Communicator> comm = emu_world();
  ASSERT_EQ(comm->name(), "nccl-emu");
  ASSERT_EQ(comm->world_size(), 2);
  const int r = comm->rank();

  // Device tensors of every dtype the gradients and the trainer use, next to a CPU tensor.
  Tensor f = on_emu({1.5f * (r + 1), -2.0f});
  Tensor d = Tensor::from_vector(std::vector<double>{0.1 * (r + 1)}, {1}).to(kEmu);
  // bf16: 1 + 2⁻⁸ lies halfway between two bf16 values and rounds to even (1); 3 + 1 is exact.
  Tensor h = on_emu({r == 0 ? 1.0f : 0.00390625f, r == 0 ? 3.0f : 1.0f}, DType::bf16);
  Tensor i = Tensor::from_vector(std::vector<int64_t>{int64_t{1} << (40 + r)}, {1}).to(kEmu);
  Tensor c = Tensor::from_vector(std::vector<float>{float(r), 7}, {2});
  comm->all_reduce_sum({f, d, h, i, c});
  EXPECT_EQ(f.device(), kEmu);
  EXPECT_EQ(f.to_float_vector(), (std::vector<float>{4.5f, -4.0f}));
  EXPECT_EQ(d.to_double_vector()[0], 0.1 + 0.2);
  EXPECT_EQ(h.to_float_vector(), (std::vector<float>{1.0f, 4.0f}));
  EXPECT_EQ(i.to_int_vector()[0], (int64_t{1} << 40) + (int64_t{1} << 41));
  EXPECT_EQ(c.to_float_vector(), (std::vector<float>{1, 14}));

  // Started together, awaited in reverse order.
  Tensor x = on_emu({float(r), 1, 2});
  Tensor y = on_emu({10.0f * r});
  auto px = comm->start_all_reduce_sum(x);
  auto py = comm->start_all_reduce_sum(y);
  py->wait();
  px->wait();
  EXPECT_TRUE(px->test());
  EXPECT_EQ(x.to_float_vector(), (std::vector<float>{1, 2, 4}));
  EXPECT_EQ(y.to_float_vector(), (std::vector<float>{10}));

  Tensor w = on_emu({float(r), float(r)});
  Tensor wh = on_emu({float(r) + 0.5f}, DType::bf16);
  Tensor wc = Tensor::from_vector(std::vector<float>{float(r)}, {1});
  comm->broadcast({w, wh, wc}, 1);
  EXPECT_EQ(w.to_float_vector(), (std::vector<float>{1, 1}));
  EXPECT_EQ(wh.to_float_vector(), (std::vector<float>{1.5f}));
  EXPECT_EQ(wc.to_float_vector(), (std::vector<float>{1}));

  // 5M floats (20 MB): more than one host message each way.
  const int64_t n = 5'000'000;
  Tensor big = ops::add(Tensor::arange(n, DType::f32), Tensor::full({n}, 1000.0 * r)).to(kEmu);
  comm->all_reduce_sum({big});
  const std::vector<float> sum = big.to_float_vector();
  for (int64_t k : {int64_t{0}, int64_t{2'097'151}, int64_t{2'097'152}, n - 1})
    EXPECT_EQ(sum[static_cast<size_t>(k)], 2.0f * static_cast<float>(k) + 1000.0f) << k;
  Tensor from0 = Tensor::full({n}, r == 0 ? 3.0 : -1.0, DType::f32, kEmu);
  comm->broadcast({from0}, 0);
  const std::vector<float> got = from0.to_float_vector();
  EXPECT_EQ(got.front(), 3.0f);
  EXPECT_EQ(got.back(), 3.0f);

  comm->barrier();
}

// Three ranks: 1 + 2²⁴ rounds to 2²⁴ in fp32, so ((1 + 2²⁴) − 2²⁴) = 0 while 1 + (2²⁴ − 2²⁴) = 1.
// Every rank gets the rank-order sum.
TEST(MpiDeviceCollectives, SumsAddTheRanksInRankOrderOnEveryRank) {
  if (!is_mpi_rank()) return run_on_ranks(3);
  std::unique_ptr<Communicator> comm = emu_world();
  ASSERT_EQ(comm->world_size(), 3);
  const float mine[3] = {1.0f, 16777216.0f, -16777216.0f};
  Tensor t = on_emu({mine[comm->rank()], 2.0f});
  comm->all_reduce_sum({t});
  EXPECT_EQ(t.to_float_vector(), (std::vector<float>{0.0f, 6.0f}));
  const std::vector<std::string> all = comm->all_gather(std::to_string(t.to_float_vector()[0]));
  EXPECT_EQ(all, (std::vector<std::string>(3, all[0])));
}

TEST(MpiDeviceCollectives, RefusesMismatchedOrUnfitTensors) {
  if (!is_mpi_rank()) return run_on_ranks(2);
  std::unique_ptr<Communicator> comm = emu_world();
  const int r = comm->rank();
  // Rank 1's buffer is longer: both ranks see it in the gathered sizes.
  Tensor t = on_emu(std::vector<float>(static_cast<size_t>(3 + r), 1.0f));
  try {
    comm->all_reduce_sum({t});
    ADD_FAILURE() << "buffers of different sizes were summed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the ranks' buffers differ"), std::string::npos)
        << e.what();
  }
  // Rank 0 broadcasts 3 elements into rank 1's 4: rank 1 sees the length and refuses.
  try {
    comm->broadcast({t}, 0);
    EXPECT_EQ(r, 0) << "rank 1 took 3 elements into a buffer of 4";
  } catch (const Error& e) {
    EXPECT_EQ(r, 1) << e.what();
    EXPECT_NE(std::string(e.what()).find("rank 0 sent a buffer of 12 bytes"), std::string::npos)
        << e.what();
  }
  // An empty buffer beside a non-empty one.
  Tensor z = on_emu(std::vector<float>(static_cast<size_t>(r), 1.0f));
  EXPECT_THROW(comm->all_reduce_sum({z}), Error);
  // Not contiguous: refused before any message moves.
  Tensor m = Tensor::zeros({2, 3}, DType::f32, kEmu).transpose(0, 1);
  try {
    comm->broadcast({m}, 0);
    ADD_FAILURE() << "a non-contiguous tensor was broadcast";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs contiguous tensors on cuda-emu"), std::string::npos)
        << e.what();
  }
  comm->barrier();
}

Tensor param(const std::string& name, std::vector<float> v) {
  Tensor t = on_emu(v);
  t.set_name(name);
  t.set_requires_grad(true);
  return t;
}

// The reducer over the device communicator, with cuda-emu parameters: several buckets, started
// during backward, with gradient accumulation; rank 1 never uses e. Integer-valued, so exact.
TEST(MpiDeviceCollectives, GradReducerSumsEmulatedGradients) {
  if (!is_mpi_rank()) return run_on_ranks(2);
  std::unique_ptr<Communicator> comm = emu_world();
  const int r = comm->rank();
  Tensor a = param("a", {1, 2}), b = param("b", {3, 4, 5}), c = param("c", {6, 7}),
         e = param("e", {8, 9});
  const ParamList list = {{"a", a}, {"b", b}, {"c", c}, {"e", e}};
  GradReducer reducer(*comm, list, /*bucket_bytes=*/16);
  // loss_r = Σ x_r ⊙ a ⊙ c  +  Σ b ⊙ b  (+ Σ e on rank 0)
  auto loss = [&](float scale) {
    const Tensor x = on_emu({scale * (r + 1), scale * 10});
    Tensor l = ops::add(ops::sum(ops::mul(ops::mul(x, a), c)), ops::sum(ops::mul(b, b)));
    return r == 0 ? ops::add(l, ops::sum(e)) : l;
  };
  for (int step = 0; step < 3; ++step) {
    for (NamedTensor p : list) p.tensor.zero_grad();
    if (step == 2) reducer.backward(loss(0.5f), false);
    reducer.backward(loss(1.0f), true);
    reducer.reduce();
    const float k = step == 2 ? 1.5f : 1.0f;
    const float nb = step == 2 ? 2 : 1;
    EXPECT_EQ(a.grad().device(), kEmu);
    EXPECT_EQ(a.grad().to_float_vector(), (std::vector<float>{k * 3 * 6, k * 20 * 7}));
    EXPECT_EQ(c.grad().to_float_vector(), (std::vector<float>{k * 3 * 1, k * 20 * 2}));
    EXPECT_EQ(b.grad().to_float_vector(),
              (std::vector<float>{nb * 2 * 2 * 3, nb * 2 * 2 * 4, nb * 2 * 2 * 5}));
    EXPECT_EQ(e.grad().to_float_vector(), (std::vector<float>{nb, nb}));
  }
  EXPECT_EQ(reducer.layout().size(), 3u);
}

}  // namespace
}  // namespace minivlm
