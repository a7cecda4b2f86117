// Collectives across the processes of a data-parallel job. One implementation per engine: a single
// process (no-ops), MPI (CPU tensors), NCCL (GPU tensors, bootstrapped over MPI). Rank 0 is the
// main process: it writes logs, metrics and checkpoints.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace minivlm {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string name() const = 0;  // "single", "mpi", "nccl"
  bool is_main() const { return rank() == 0; }

  // In-place sum over ranks of contiguous tensors (each reduced in full).
  virtual void all_reduce_sum(const std::vector<Tensor>& tensors) = 0;
  virtual void all_reduce_sum(std::vector<double>& values) = 0;
  virtual void broadcast(const std::vector<Tensor>& tensors, int root) = 0;
  virtual void broadcast(std::string& text, int root) = 0;
  // Gathers one string per rank on every rank (small payloads: RNG and loader states).
  virtual std::vector<std::string> all_gather(const std::string& text) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job with `message` (named by this rank); never returns.
  [[noreturn]] virtual void abort(const std::string& message) = 0;
};

// MPI when the process was started by mpirun/mpiexec and this build has MPI, else single-process.
std::unique_ptr<Communicator> make_communicator();
std::unique_ptr<Communicator> make_single_communicator();

}  // namespace minivlm
