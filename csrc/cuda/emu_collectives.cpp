// The emulated device's collectives over the job's host communicator: a buffer is copied out of
// device memory, travels as bytes and is copied back. Sums gather every rank's bytes and each rank
// adds them in rank order, which makes the result the same bits on every rank and in every run,
// whatever algorithm the host communicator's library would pick for a sum of its own.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "cuda/runtime.h"
#include "dist/communicator.h"
#include "dist/device_collectives.h"

namespace minivlm::cuda {

namespace {

// Bytes moved per host collective (gathered from all ranks together, or broadcast): bounds the
// scratch memory and keeps MPI's int counts far from overflowing.
constexpr std::size_t kChunkBytes = std::size_t{16} << 20;
constexpr std::size_t kHeader = sizeof(uint64_t);

class Completed final : public CollectiveEvent {
 public:
  bool done() override { return true; }
};

template <typename T>
T load(const std::string& bytes, std::size_t i) {
  T v;
  std::memcpy(&v, bytes.data() + i * sizeof(T), sizeof(T));
  return v;
}

// out[i] = ((v₀[i] + v₁[i]) + v₂[i]) + …, each addition computed by add.
template <typename T, typename Add>
void add_in_rank_order(const std::vector<std::string>& parts, T* out, std::size_t n, Add add) {
  for (std::size_t i = 0; i < n; ++i) {
    T acc = load<T>(parts[0], i);
    for (std::size_t r = 1; r < parts.size(); ++r) acc = add(acc, load<T>(parts[r], i));
    out[i] = acc;
  }
}

template <typename T>
void add_plain(const std::vector<std::string>& parts, void* out, std::size_t n) {
  add_in_rank_order<T>(parts, static_cast<T*>(out), n, [](T a, T b) -> T {
    if constexpr (std::is_integral_v<T>) {
      // Integers wrap around, as on the GPU, instead of overflowing.
      using U = std::make_unsigned_t<T>;
      return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
    } else {
      return a + b;
    }
  });
}

// 16-bit floats: each addition in fp32, rounded to storage.
template <float (*Widen)(uint16_t), uint16_t (*Narrow)(float)>
void add_half(const std::vector<std::string>& parts, void* out, std::size_t n) {
  add_in_rank_order<uint16_t>(parts, static_cast<uint16_t*>(out), n,
                              [](uint16_t a, uint16_t b) { return Narrow(Widen(a) + Widen(b)); });
}

void add_parts(DType dtype, const std::vector<std::string>& parts, void* out, std::size_t n) {
  switch (dtype) {
    case DType::f32:
      return add_plain<float>(parts, out, n);
    case DType::f64:
      return add_plain<double>(parts, out, n);
    case DType::i32:
      return add_plain<int32_t>(parts, out, n);
    case DType::i64:
      return add_plain<int64_t>(parts, out, n);
    case DType::bf16:
      return add_half<bf16_to_f32, f32_to_bf16>(parts, out, n);
    case DType::f16:
      return add_half<f16_to_f32, f32_to_f16>(parts, out, n);
  }
  MV_FAIL("cuda-emu all-reduce: unsupported dtype ", dtype_name(dtype));
}

class EmulatedCollectives final : public Collectives {
 public:
  explicit EmulatedCollectives(Communicator& host) : host_(host), rt_(emulated_runtime()) {}
  std::string name() const override { return "nccl-emu"; }

  std::unique_ptr<CollectiveEvent> all_reduce_sum(const std::vector<DeviceBuffer>& bufs) override {
    const std::size_t world = static_cast<std::size_t>(host_.world_size());
    for (const DeviceBuffer& b : bufs) {
      const std::size_t esize = dtype_size(b.dtype);
      const std::size_t per_call = std::max<std::size_t>(1, kChunkBytes / world / esize);
      // At least one message, so an empty buffer beside a non-empty one is caught too.
      std::size_t at = 0;
      do {
        const std::size_t n = std::min(per_call, b.count - at);
        char* chunk = static_cast<char*>(b.data) + at * esize;
        // Each message leads with the buffer's length, so ranks whose buffers differ all stop at
        // the first message instead of calling different numbers of collectives.
        std::string msg(kHeader + n * esize, '\0');
        const uint64_t count = b.count;
        std::memcpy(msg.data(), &count, kHeader);
        rt_.copy_d2h(msg.data() + kHeader, chunk, n * esize, nullptr);
        std::vector<std::string> parts = host_.all_gather(msg);
        for (std::size_t r = 0; r < parts.size(); ++r) {
          MV_CHECK(
              parts[r].compare(0, kHeader, msg, 0, kHeader) == 0 && parts[r].size() == msg.size(),
              "cuda-emu all-reduce of ", b.count, " ", dtype_name(b.dtype), " elements: rank ", r,
              " sent another length; the ranks' buffers differ");
          parts[r].erase(0, kHeader);
        }
        std::string sum(n * esize, '\0');
        add_parts(b.dtype, parts, sum.data(), n);
        rt_.copy_h2d(chunk, sum.data(), sum.size(), nullptr);
        at += n;
      } while (at < b.count);
    }
    return std::make_unique<Completed>();
  }

  std::unique_ptr<CollectiveEvent> broadcast(const std::vector<DeviceBuffer>& bufs,
                                             int root) override {
    const bool sender = host_.rank() == root;
    for (const DeviceBuffer& b : bufs) {
      const std::size_t nbytes = b.count * dtype_size(b.dtype);
      std::size_t at = 0;
      do {
        const std::size_t n = std::min(kChunkBytes, nbytes - at);
        char* chunk = static_cast<char*>(b.data) + at;
        // Root's buffer length leads, so a rank whose buffer differs stops at the first message.
        std::string msg(sender ? kHeader + n : 0, '\0');
        if (sender) {
          const uint64_t total = nbytes;
          std::memcpy(msg.data(), &total, kHeader);
          rt_.copy_d2h(msg.data() + kHeader, chunk, n, nullptr);
        }
        host_.broadcast(msg, root);
        uint64_t total = 0;
        if (msg.size() >= kHeader) std::memcpy(&total, msg.data(), kHeader);
        MV_CHECK(total == nbytes && msg.size() == kHeader + n, "cuda-emu broadcast of ", b.count,
                 " ", dtype_name(b.dtype), " elements (", nbytes, " bytes): rank ", root,
                 " sent a buffer of ", total, " bytes; the ranks' buffers differ");
        if (!sender) rt_.copy_h2d(chunk, msg.data() + kHeader, n, nullptr);
        at += n;
      } while (at < nbytes);
    }
    return std::make_unique<Completed>();
  }

  // Nothing waits inside device collectives here: a peer blocked in a host collective is ended by
  // the host communicator's abort.
  void abort() noexcept override {}

 private:
  Communicator& host_;
  Runtime& rt_;
};

// Each collective runs when queued (the emulated stream is the calling thread) as host collectives;
// sums add the ranks' values in rank order, rounding to the storage type after each addition as
// NCCL's reductions do.
const bool registered = [] {
  register_device_collectives(DeviceType::cuda_emu,
                              [](Communicator& host, int) -> std::unique_ptr<Collectives> {
                                return std::make_unique<EmulatedCollectives>(host);
                              });
  return true;
}();

}  // namespace

}  // namespace minivlm::cuda
