// Collectives across the processes of a data-parallel job. One implementation per engine: a single
// process (no-ops), MPI (CPU tensors), and a device communicator for a CUDA back-end device (its
// tensors through NCCL on `cuda`, through NCCL's emulation on `cuda-emu`; the rest through MPI).
// Rank 0 is the main process: it writes logs, metrics and checkpoints.
//
// Every rank must call the same collectives in the same order (MPI's and NCCL's rule); a rank that
// cannot go on calls abort(), which ends the whole job instead of leaving the others waiting.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace minivlm {

// A collective started by Communicator::start_all_reduce_sum. Destroying one that was not waited
// for leaves it running (only on the way to abort(): waiting could hang).
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  // Lets the collective advance without blocking (MPI moves only inside MPI calls); true once done.
  virtual bool test() = 0;
  // Blocks until the result is in place.
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string name() const = 0;  // "single", "mpi", "nccl", "nccl-emu"
  bool is_main() const { return rank() == 0; }

  // In-place sum over ranks of contiguous tensors (each reduced in full).
  virtual void all_reduce_sum(const std::vector<Tensor>& tensors) = 0;
  virtual void all_reduce_sum(std::vector<double>& values) = 0;
  // Starts the in-place sum of one contiguous tensor; `t` must not be touched until wait(). The
  // default runs it to completion at once (engines without non-blocking collectives).
  virtual std::unique_ptr<PendingCollective> start_all_reduce_sum(const Tensor& t);
  virtual void broadcast(const std::vector<Tensor>& tensors, int root) = 0;
  virtual void broadcast(std::string& text, int root) = 0;
  // Gathers one string per rank on every rank (small payloads: RNG and loader states).
  virtual std::vector<std::string> all_gather(const std::string& text) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job with `message` (named by this rank); never returns.
  [[noreturn]] virtual void abort(const std::string& message) = 0;
};

// MPI when the process was started by mpirun/mpiexec and this build has MPI, else single-process.
// A multi-process launch of a build without MPI ends with an error (each process would believe it
// is alone and write the same files).
std::unique_ptr<Communicator> make_communicator();
std::unique_ptr<Communicator> make_single_communicator();

// Makes `comm` (from make_communicator) the communicator for tensors on `device` in a job of
// several processes: on cuda, NCCL (one GPU per local rank; the NCCL id travels over the MPI
// communicator, which keeps serving CPU tensors and strings); on cuda-emu, the same communicator
// over emulated NCCL collectives, whose data travel over MPI. Unchanged for the CPU or a single
// process. Throws, leaving `comm` as it was, for cuda when the build has no NCCL; a rank that
// cannot join the device collectives ends the job (abort), since the others would wait for it
// forever.
void use_device_communicator(std::unique_ptr<Communicator>& comm, Device device);

}  // namespace minivlm
