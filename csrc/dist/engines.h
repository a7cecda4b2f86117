// The engines behind make_communicator / use_device_communicator. MPI is compiled only when it is
// part of the build (MINIVLM_HAVE_MPI); the device communicator always is, with NCCL in
// MINIVLM_CUDA builds and the cuda-emu collectives in every build.
#pragma once
#include <memory>

#include "dist/communicator.h"

namespace minivlm {

// The number of processes an MPI launcher started (from its environment); 0 when none did.
int launched_world_size();
// This process's index among the job's processes on its host (MPI launcher environment), else 0.
int launched_local_rank();

std::unique_ptr<Communicator> make_mpi_communicator();
// Collectives on `device` (cuda: NCCL over the GPU of this process's local rank; cuda-emu:
// emulated) beside `host` (an MPI communicator), which carries their bootstrap and every collective
// on CPU tensors or strings. A rank that cannot join ends the job.
std::unique_ptr<Communicator> make_device_communicator(std::unique_ptr<Communicator> host,
                                                       Device device);

}  // namespace minivlm
