// The communicators on two MPI ranks: sums, non-blocking sums, broadcasts and gathers; the device
// communicator's choice; and abort, which must end every rank with a message naming the one that
// failed, even while the others wait inside collectives.
#include <gtest/gtest.h>

#include <chrono>

#include "cuda/gpu.h"
#include "dist/communicator.h"
#include "dist/grad_reducer.h"
#include "mpi_util.h"
#include "ops/ops.h"

namespace minivlm {
namespace {

using testing::is_mpi_rank;
using testing::run_on_ranks;
using testing::run_test_on_ranks;

Communicator& world() {
  static const std::unique_ptr<Communicator> comm = make_communicator();
  return *comm;
}

TEST(MpiCollectives, SumsBroadcastsAndGathersAcrossRanks) {
  if (!is_mpi_rank()) return run_on_ranks(2);
  Communicator& comm = world();
  ASSERT_EQ(comm.name(), "mpi");
  ASSERT_EQ(comm.world_size(), 2);
  const int r = comm.rank();

  Tensor f = Tensor::from_vector(std::vector<float>{1.5f * (r + 1), -2.0f}, {2});
  Tensor d = Tensor::from_vector(std::vector<double>{0.1 * (r + 1)}, {1});
  Tensor i = Tensor::from_vector(std::vector<int64_t>{int64_t{1} << (40 + r)}, {1});
  comm.all_reduce_sum({f, d, i});
  EXPECT_EQ(f.to_float_vector(), (std::vector<float>{4.5f, -4.0f}));
  EXPECT_EQ(d.to_double_vector()[0], 0.1 + 0.2);
  EXPECT_EQ(i.to_int_vector()[0], (int64_t{1} << 40) + (int64_t{1} << 41));

  // Started together, awaited in reverse order.
  Tensor x = Tensor::from_vector(std::vector<float>{float(r), 1, 2}, {3});
  Tensor y = Tensor::from_vector(std::vector<float>{10.0f * r}, {1});
  auto px = comm.start_all_reduce_sum(x);
  auto py = comm.start_all_reduce_sum(y);
  py->wait();
  px->wait();
  EXPECT_TRUE(px->test());
  EXPECT_EQ(x.to_float_vector(), (std::vector<float>{1, 2, 4}));
  EXPECT_EQ(y.to_float_vector(), (std::vector<float>{10}));

  std::vector<double> v = {1.0 * r, 2.5};
  comm.all_reduce_sum(v);
  EXPECT_EQ(v, (std::vector<double>{1.0, 5.0}));

  Tensor w = Tensor::from_vector(std::vector<float>{float(r), float(r)}, {2});
  comm.broadcast({w}, 1);
  EXPECT_EQ(w.to_float_vector(), (std::vector<float>{1, 1}));
  std::string text = r == 1 ? "from rank one" : "";
  comm.broadcast(text, 1);
  EXPECT_EQ(text, "from rank one");

  const std::vector<std::string> all =
      comm.all_gather(std::string(static_cast<size_t>(3 * r), 'x'));
  EXPECT_EQ(all, (std::vector<std::string>{"", "xxx"}));

  // bf16 (no MPI type: 16-bit words and a sum of our own): each addition in fp32, rounded to bf16.
  // 1 + 2⁻⁸ lies halfway between two bf16 values and rounds to even (1); 3 + 1 is exact; blocking
  // and non-blocking alike.
  Tensor h = Tensor::from_vector(
                 std::vector<float>{r == 0 ? 1.0f : 0.00390625f, r == 0 ? 3.0f : 1.0f}, {2})
                 .to(DType::bf16);
  Tensor h2 = h.clone();
  comm.all_reduce_sum({h});
  EXPECT_EQ(h.dtype(), DType::bf16);
  EXPECT_EQ(h.to_float_vector(), (std::vector<float>{1.0f, 4.0f}));
  comm.start_all_reduce_sum(h2)->wait();
  EXPECT_EQ(h2.to_float_vector(), (std::vector<float>{1.0f, 4.0f}));

  // f16 has no MPI type: refused on every rank before any message moves.
  Tensor q = Tensor::zeros({2}, DType::f16);
  try {
    comm.all_reduce_sum({q});
    ADD_FAILURE() << "f16 all-reduce was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f16"), std::string::npos) << e.what();
  }
  comm.barrier();
}

TEST(MpiCollectives, DeviceCommunicatorForCpuTensorsIsTheHost) {
  if (!is_mpi_rank()) return run_on_ranks(2);
  std::unique_ptr<Communicator> comm = make_communicator();
  const Communicator* host = comm.get();
  use_device_communicator(comm, kCPU);
  EXPECT_EQ(comm.get(), host);
#ifndef MINIVLM_HAVE_CUDA
  try {
    use_device_communicator(comm, Device{DeviceType::cuda, 0});
    ADD_FAILURE() << "a build without NCCL accepted cuda tensors in a job of 2";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("need its collectives (NCCL for cuda)"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(comm.get(), host);
#endif
}

#if defined(MINIVLM_HAVE_CUDA) && defined(MINIVLM_HAVE_MPI)
// Without a GPU no rank can join NCCL: the job ends, naming the rank, instead of waiting in
// ncclCommInitRank for a peer that never comes.
TEST(MpiCollectives, NcclWithoutAGpuEndsTheJobNamingTheRank) {
  if (is_mpi_rank()) {
    std::unique_ptr<Communicator> comm = make_communicator();
    use_device_communicator(comm, Device{DeviceType::cuda, 0});
    ADD_FAILURE() << "joined NCCL without a GPU";
    return;
  }
  MINIVLM_SKIP_WITHOUT_MPI();
  if (gpu_available()) GTEST_SKIP() << "this machine has a GPU";
  const testing::RunResult r = run_test_on_ranks(2);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, 124) << "timed out: " << r.output;
  EXPECT_NE(r.output.find("error: cuda collectives: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no GPU is visible to this process"), std::string::npos) << r.output;
  EXPECT_TRUE(r.output.find("rank 0: error") != std::string::npos ||
              r.output.find("rank 1: error") != std::string::npos)
      << r.output;
}
#endif

// Rank 1 fails while rank 0 waits for it, first in a plain collective, then with gradient buckets
// in flight: abort ends both, and the message names rank 1.
TEST(MpiCollectives, AbortOnOneRankEndsTheWaitingOnes) {
  if (is_mpi_rank()) {
    Communicator& comm = world();
    Tensor p = Tensor::from_vector(std::vector<float>{1, 2}, {2});
    p.set_requires_grad(true);
    const char* where = std::getenv("MINIVLM_TEST_FAIL_IN");
    const std::string in = where != nullptr ? where : "";
    if (in == "barrier") {
      if (comm.rank() == 1) comm.abort("planted failure before the barrier");
      comm.barrier();
    } else {
      GradReducer reducer(comm, {{"p", p}}, 4);
      for (int step = 0; step < 2; ++step) {
        p.zero_grad();
        reducer.backward(ops::sum(ops::mul(p, p)), true);
        if (comm.rank() == 1 && step == 1) comm.abort("planted failure during the reduction");
        reducer.reduce();
      }
      comm.barrier();
    }
    ADD_FAILURE() << "rank " << comm.rank() << " was not ended";
    return;
  }
  MINIVLM_SKIP_WITHOUT_MPI();
  for (const std::string in : {"barrier", "reduction"}) {
    const auto t0 = std::chrono::steady_clock::now();
    const testing::RunResult r = run_test_on_ranks(2, "-x MINIVLM_TEST_FAIL_IN=" + in);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.exit_code, 124) << "timed out: " << r.output;
    EXPECT_LT(secs, 30) << r.output;
    EXPECT_NE(r.output.find("rank 1: error: planted failure"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("was not ended"), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace minivlm
