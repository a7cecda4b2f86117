// MPI communicator for CPU tensors. MPI is initialised only when the process was started by an MPI
// launcher (make_communicator checks its environment); a plain run never touches MPI.
// The C API only: OpenMPI's C++ bindings would need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

#include "dist/engines.h"

namespace minivlm {

namespace {

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::f32:
      return MPI_FLOAT;
    case DType::f64:
      return MPI_DOUBLE;
    case DType::i32:
      return MPI_INT32_T;
    case DType::i64:
      return MPI_INT64_T;
    case DType::bf16:
      return MPI_UINT16_T;  // summed by bf16_sum
    case DType::f16:
      break;
  }
  MV_FAIL("MPI collectives need f32, f64, i32, i64 or bf16 tensors, got ", dtype_name(t));
}

// The sum of bf16 values (MPI has no bf16 type): each addition in fp32, rounded to bf16, as the
// device collectives add them.
void bf16_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = f32_to_bf16(bf16_to_f32(a[i]) + bf16_to_f32(b[i]));
}

// MPI counts are ints.
int mpi_count(int64_t n, const Tensor& t) {
  MV_CHECK(n <= INT_MAX, "MPI collective on ", t.desc(), ": more than ", INT_MAX,
           " elements in one call");
  return static_cast<int>(n);
}

void check_host_tensor(const Tensor& t, const char* what) {
  MV_CHECK(t.device().is_cpu() && t.is_contiguous(), "MPI ", what,
           " needs contiguous CPU tensors, got ", t.desc());
}

class MpiCommunicator;

class MpiPending final : public PendingCollective {
 public:
  MpiPending(MpiCommunicator& comm, MPI_Request request) : comm_(comm), request_(request) {}
  bool test() override;
  void wait() override;

 private:
  MpiCommunicator& comm_;
  MPI_Request request_;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) MPI_Init(nullptr, nullptr);
    // Errors become return codes so they can be reported with the rank before aborting.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Op_create(&bf16_sum, 1, &bf16_sum_);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) {
      MPI_Op_free(&bf16_sum_);
      MPI_Finalize();
    }
  }
  int rank() const override { return rank_; }
  int world_size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  void all_reduce_sum(const std::vector<Tensor>& tensors) override {
    for (const Tensor& t : tensors) {
      check_host_tensor(t, "all-reduce");
      check(MPI_Allreduce(MPI_IN_PLACE, t.raw_data(), mpi_count(t.numel(), t), mpi_type(t.dtype()),
                          sum_op(t.dtype()), MPI_COMM_WORLD),
            "MPI_Allreduce");
    }
  }
  void all_reduce_sum(std::vector<double>& v) override {
    check(MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_DOUBLE, MPI_SUM,
                        MPI_COMM_WORLD),
          "MPI_Allreduce");
  }
  std::unique_ptr<PendingCollective> start_all_reduce_sum(const Tensor& t) override {
    check_host_tensor(t, "all-reduce");
    MPI_Request request = MPI_REQUEST_NULL;
    check(MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), mpi_count(t.numel(), t), mpi_type(t.dtype()),
                         sum_op(t.dtype()), MPI_COMM_WORLD, &request),
          "MPI_Iallreduce");
    return std::make_unique<MpiPending>(*this, request);
  }
  void broadcast(const std::vector<Tensor>& tensors, int root) override {
    for (const Tensor& t : tensors) {
      check_host_tensor(t, "broadcast");
      check(MPI_Bcast(t.raw_data(), mpi_count(static_cast<int64_t>(t.nbytes()), t), MPI_BYTE, root,
                      MPI_COMM_WORLD),
            "MPI_Bcast");
    }
  }
  void broadcast(std::string& text, int root) override {
    int64_t n = static_cast<int64_t>(text.size());
    check(MPI_Bcast(&n, 1, MPI_INT64_T, root, MPI_COMM_WORLD), "MPI_Bcast");
    text.resize(static_cast<size_t>(n));
    check(MPI_Bcast(text.data(), static_cast<int>(n), MPI_CHAR, root, MPI_COMM_WORLD), "MPI_Bcast");
  }
  std::vector<std::string> all_gather(const std::string& text) override {
    int n = static_cast<int>(text.size());
    std::vector<int> sizes(static_cast<size_t>(size_)), offsets(static_cast<size_t>(size_));
    check(MPI_Allgather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
    int total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[static_cast<size_t>(r)] = total;
      total += sizes[static_cast<size_t>(r)];
    }
    std::string all(static_cast<size_t>(total), '\0');
    check(MPI_Allgatherv(text.data(), n, MPI_CHAR, all.data(), sizes.data(), offsets.data(),
                         MPI_CHAR, MPI_COMM_WORLD),
          "MPI_Allgatherv");
    std::vector<std::string> out;
    for (int r = 0; r < size_; ++r)
      out.push_back(all.substr(static_cast<size_t>(offsets[static_cast<size_t>(r)]),
                               static_cast<size_t>(sizes[static_cast<size_t>(r)])));
    return out;
  }
  void barrier() override { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
  [[noreturn]] void abort(const std::string& message) override {
    std::fprintf(stderr, "rank %d: error: %s\n", rank_, message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::_Exit(1);
  }

  // A failed MPI call leaves the job in an unknown state: end it.
  void check(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char buf[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, buf, &len);
    abort(std::string(what) + " failed: " + std::string(buf, static_cast<size_t>(len)));
  }

 private:
  MPI_Op sum_op(DType t) const { return t == DType::bf16 ? bf16_sum_ : MPI_SUM; }

  int rank_ = 0, size_ = 1;
  MPI_Op bf16_sum_ = MPI_OP_NULL;
};

bool MpiPending::test() {
  if (request_ == MPI_REQUEST_NULL) return true;
  int done = 0;
  comm_.check(MPI_Test(&request_, &done, MPI_STATUS_IGNORE), "MPI_Test");
  return done != 0;
}

void MpiPending::wait() {
  if (request_ != MPI_REQUEST_NULL) comm_.check(MPI_Wait(&request_, MPI_STATUS_IGNORE), "MPI_Wait");
}

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() {
  return std::make_unique<MpiCommunicator>();
}

}  // namespace minivlm
