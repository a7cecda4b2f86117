// The GPU cost model (docs/performance.md, "The GPU cost model"): a recorder that MV_KERNEL
// (cuda/backend.h) and the back-end's GEMMs (cuda/linalg.cpp) feed with each launch's cost
// (kernels/cost.h), and a roofline prediction of those launches on a named GPU.
//
// Recording is off by default; off, a launch pays one relaxed atomic load. A CostRecording turns it
// on for its lifetime (one at a time, process-wide; launches from any thread are recorded). In
// shape-only mode nothing is launched: kernels and GEMMs are priced and skipped, the emulated
// runtime's copies are skipped (device → host copies yield zeros), so device memory is allocated
// but never touched and a step at realistic sizes runs in seconds. Values that reach the host are
// then zeros; only the sequence of launches is real, and a path that depends on device values (MoE
// routing) takes one fixed branch.
#pragma once
#include <atomic>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cost.h"

namespace minivlm::cuda {

enum class CostMode : int { off, record, shape_only };

namespace detail {
inline std::atomic<int> g_cost_mode{0};
}  // namespace detail

inline CostMode cost_mode() {
  return static_cast<CostMode>(detail::g_cost_mode.load(std::memory_order_relaxed));
}

struct CostRecord {
  const char* name = "";  // the launcher's name, or "gemm"
  kernels::KernelCost cost;
};

// Appends one launch to the active recording (thread-safe; nothing when none is active).
void record_cost(const char* name, const kernels::KernelCost& cost);

class CostRecording {
 public:
  // execute = false: shape-only (see above). An error if a recording is already active.
  explicit CostRecording(bool execute);
  ~CostRecording();
  CostRecording(const CostRecording&) = delete;
  CostRecording& operator=(const CostRecording&) = delete;
  // The launches recorded so far, in order; the recording goes on, empty.
  std::vector<CostRecord> take();
};

// MV_KERNEL's body: prices the launch when recording, and launches unless shape-only (then a
// launcher's return value comes from its cost, KernelCost::result).
template <typename Cost, typename Launch>
auto launch_kernel(const char* name, Cost&& cost, Launch&& launch) -> decltype(launch()) {
  if (cost_mode() != CostMode::off) [[unlikely]] {
    const kernels::KernelCost c = cost();
    record_cost(name, c);
    if (cost_mode() == CostMode::shape_only) {
      if constexpr (std::is_void_v<decltype(launch())>)
        return;
      else
        return static_cast<decltype(launch())>(c.result);
    }
  }
  return launch();
}

// A GPU's peaks, from its vendor's datasheet.
struct GpuSpec {
  std::string name;
  double hbm_bytes_per_s = 0;    // memory bandwidth
  double tensor_flops = 0;       // dense bf16 tensor-core peak (fp32 accumulation)
  double simt_flops = 0;         // fp32 non-tensor peak
  double launch_seconds = 2e-6;  // fixed cost per kernel or GEMM on one stream
};
// "h100" (H100 SXM5) or "h200"; an error names the valid ones.
const GpuSpec& gpu_spec(const std::string& name);

struct KernelTime {
  std::string name;
  int64_t launches = 0;
  double bytes = 0, flops = 0, model_flops = 0;
  double seconds = 0;         // Σ over launches of max(bytes/BW, flops/peak) + launch overhead
  double memory_seconds = 0;  // the part of it where bytes/BW was the larger
};
struct StepPrediction {
  std::vector<KernelTime> kernels;  // by name, largest predicted time first
  int64_t launches = 0;
  double bytes = 0, flops = 0, model_flops = 0, seconds = 0;
  double mfu = 0;  // model_flops / (seconds · tensor peak)
};
StepPrediction predict(const std::vector<CostRecord>& records, const GpuSpec& gpu);

}  // namespace minivlm::cuda
