// The engines behind make_communicator / make_device_communicator, each compiled only when its
// library is part of the build (MPI: MINIVLM_HAVE_MPI; NCCL: MINIVLM_HAVE_CUDA and
// MINIVLM_HAVE_MPI).
#pragma once
#include <memory>

#include "dist/communicator.h"

namespace minivlm {

// The number of processes an MPI launcher started (from its environment); 0 when none did.
int launched_world_size();
// This process's index among the job's processes on its host (MPI launcher environment), else 0.
int launched_local_rank();

std::unique_ptr<Communicator> make_mpi_communicator();
// NCCL over the GPU of this process's local rank; `host` (an MPI communicator) carries the
// bootstrap id and every collective on CPU tensors or strings.
std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> host);

}  // namespace minivlm
