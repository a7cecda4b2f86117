#include "dist/communicator.h"

#include <cstdlib>
#include <string>

#include "dist/device_collectives.h"
#include "dist/engines.h"

namespace minivlm {

namespace {

// Collectives without a non-blocking form complete when started.
class Completed final : public PendingCollective {
 public:
  bool test() override { return true; }
  void wait() override {}
};

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::atoi(v) : -1;
}

}  // namespace

std::unique_ptr<PendingCollective> Communicator::start_all_reduce_sum(const Tensor& t) {
  all_reduce_sum(std::vector<Tensor>{t});
  return std::make_unique<Completed>();
}

// Open MPI and MPICH/Hydra export the size; a PMIx launcher (srun --mpi=pmix) at least the rank.
int launched_world_size() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (env_int(v) > 0) return env_int(v);
  return std::getenv("PMIX_RANK") != nullptr ? 1 : 0;
}

int launched_local_rank() {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
    if (env_int(v) >= 0) return env_int(v);
  return 0;
}

std::unique_ptr<Communicator> make_communicator() {
  const int launched = launched_world_size();
#ifdef MINIVLM_HAVE_MPI
  if (launched > 0) return make_mpi_communicator();
#else
  if (launched > 1)
    make_single_communicator()->abort(
        "started by an MPI launcher as one of " + std::to_string(launched) +
        " processes, but this build has no MPI; HINT: install MPI (libopenmpi-dev) and rebuild "
        "(CMake option MINIVLM_MPI)");
#endif
  return make_single_communicator();
}

void use_device_communicator(std::unique_ptr<Communicator>& comm, Device device) {
  if (device.is_cpu() || comm->world_size() == 1) return;
  MV_CHECK(device_collectives(device.type) != nullptr, "tensors on ", device.str(), " in a job of ",
           comm->world_size(),
           " processes need its collectives (NCCL for cuda), which this build lacks; HINT: rebuild "
           "with MINIVLM_CUDA on");
  comm = make_device_communicator(std::move(comm), device);
}

}  // namespace minivlm
