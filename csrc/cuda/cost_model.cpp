#include "cuda/cost_model.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "core/error.h"

namespace minivlm::cuda {

namespace {

std::mutex g_mutex;
std::vector<CostRecord> g_records;

}  // namespace

void record_cost(const char* name, const kernels::KernelCost& cost) {
  const std::lock_guard<std::mutex> lock(g_mutex);
  if (cost_mode() == CostMode::off) return;
  g_records.push_back({name, cost});
}

CostRecording::CostRecording(bool execute) {
  const std::lock_guard<std::mutex> lock(g_mutex);
  int expected = static_cast<int>(CostMode::off);
  const int mode = static_cast<int>(execute ? CostMode::record : CostMode::shape_only);
  MV_CHECK(detail::g_cost_mode.compare_exchange_strong(expected, mode),
           "CostRecording: a recording is already active");
  g_records.clear();
}

CostRecording::~CostRecording() {
  const std::lock_guard<std::mutex> lock(g_mutex);
  detail::g_cost_mode.store(static_cast<int>(CostMode::off));
  g_records.clear();
}

std::vector<CostRecord> CostRecording::take() {
  const std::lock_guard<std::mutex> lock(g_mutex);
  std::vector<CostRecord> out;
  out.swap(g_records);
  return out;
}

const GpuSpec& gpu_spec(const std::string& name) {
  // NVIDIA H100 Tensor Core GPU datasheet (SXM5): 3.35 TB/s HBM3, 989.4 TFLOP/s dense BF16 tensor,
  // 66.9 TFLOP/s FP32. NVIDIA H200 datasheet (SXM): 4.8 TB/s HBM3e, the same compute.
  static const GpuSpec h100{"h100", 3.35e12, 989.4e12, 66.9e12, 2e-6};
  static const GpuSpec h200{"h200", 4.8e12, 989.4e12, 66.9e12, 2e-6};
  if (name == "h100") return h100;
  if (name == "h200") return h200;
  MV_FAIL("unknown GPU '", name, "' for the cost model; valid: h100, h200");
}

StepPrediction predict(const std::vector<CostRecord>& records, const GpuSpec& gpu) {
  StepPrediction p;
  std::map<std::string, KernelTime> by_name;
  for (const CostRecord& r : records) {
    const kernels::KernelCost& c = r.cost;
    const double mem = c.bytes / gpu.hbm_bytes_per_s;
    const double math = c.flops / (c.tensor_core ? gpu.tensor_flops : gpu.simt_flops);
    const double t = std::max(mem, math) + gpu.launch_seconds;
    KernelTime& k = by_name[r.name];
    k.name = r.name;
    ++k.launches;
    k.bytes += c.bytes;
    k.flops += c.flops;
    k.model_flops += c.model_flops;
    k.seconds += t;
    if (mem >= math) k.memory_seconds += t;
    ++p.launches;
    p.bytes += c.bytes;
    p.flops += c.flops;
    p.model_flops += c.model_flops;
    p.seconds += t;
  }
  for (auto& [name, k] : by_name) p.kernels.push_back(k);
  std::sort(p.kernels.begin(), p.kernels.end(),
            [](const KernelTime& a, const KernelTime& b) { return a.seconds > b.seconds; });
  p.mfu = p.seconds > 0 ? p.model_flops / (p.seconds * gpu.tensor_flops) : 0;
  return p;
}

}  // namespace minivlm::cuda
