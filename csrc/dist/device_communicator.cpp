// The communicator of a multi-process job whose tensors live on a device: tensors on that device go
// through the device's registered collectives (dist/device_collectives.h: NCCL on `cuda`, its
// emulation on `cuda-emu`), CPU tensors, numbers and strings through the host communicator (MPI),
// which also carries the device collectives' bootstrap. The same code serves every device, so
// `cuda-emu` jobs test the path that `cuda` jobs take.
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <array>

#include "dist/device_collectives.h"
#include "dist/engines.h"

namespace minivlm {

namespace {

class DeviceCommunicator;

class DevicePending final : public PendingCollective {
 public:
  DevicePending(DeviceCommunicator& comm, std::unique_ptr<CollectiveEvent> event)
      : comm_(comm), event_(std::move(event)) {}
  bool test() override;
  void wait() override {
    while (!test()) std::this_thread::yield();
  }

 private:
  DeviceCommunicator& comm_;
  std::unique_ptr<CollectiveEvent> event_;
};

class DeviceCommunicator final : public Communicator {
 public:
  DeviceCommunicator(std::unique_ptr<Communicator> host, Device device)
      : host_(std::move(host)), device_(device) {
    // A rank that cannot join leaves the others waiting for it: end the job.
    try {
      const JoinDeviceCollectives join = device_collectives(device.type);
      MV_CHECK(join != nullptr, "no collectives for tensors on ", device.str(), " in this build");
      collectives_ = join(*host_, launched_local_rank());
    } catch (const std::exception& e) {
      host_->abort(label() + ": " + e.what());
    }
  }
  int rank() const override { return host_->rank(); }
  int world_size() const override { return host_->world_size(); }
  std::string name() const override { return collectives_->name(); }

  void all_reduce_sum(const std::vector<Tensor>& tensors) override {
    const auto [on_device, on_host] = split(tensors, "all-reduce");
    if (!on_device.empty()) DevicePending(*this, collectives_->all_reduce_sum(on_device)).wait();
    if (!on_host.empty()) host_->all_reduce_sum(on_host);
  }
  void all_reduce_sum(std::vector<double>& values) override { host_->all_reduce_sum(values); }
  std::unique_ptr<PendingCollective> start_all_reduce_sum(const Tensor& t) override {
    const auto [on_device, on_host] = split({t}, "all-reduce");
    if (on_device.empty()) return host_->start_all_reduce_sum(t);
    return std::make_unique<DevicePending>(*this, collectives_->all_reduce_sum(on_device));
  }
  void broadcast(const std::vector<Tensor>& tensors, int root) override {
    const auto [on_device, on_host] = split(tensors, "broadcast");
    if (!on_device.empty()) DevicePending(*this, collectives_->broadcast(on_device, root)).wait();
    if (!on_host.empty()) host_->broadcast(on_host, root);
  }
  void broadcast(std::string& text, int root) override { host_->broadcast(text, root); }
  std::vector<std::string> all_gather(const std::string& text) override {
    return host_->all_gather(text);
  }
  void barrier() override { host_->barrier(); }
  [[noreturn]] void abort(const std::string& message) override {
    if (collectives_ != nullptr) collectives_->abort();
    host_->abort(message);
    std::_Exit(1);  // not reached: the compiler cannot see [[noreturn]] through a virtual call
  }

  // The event's state; a failed collective ends the job.
  bool done(CollectiveEvent& event) {
    try {
      return event.done();
    } catch (const std::exception& e) {
      abort(label() + ": " + e.what());
    }
  }

 private:
  std::string label() const { return device_.str() + " collectives"; }

  // Device tensors as device buffers, in order, and the CPU tensors.
  std::pair<std::vector<DeviceBuffer>, std::vector<Tensor>> split(
      const std::vector<Tensor>& tensors, const char* what) const {
    std::vector<DeviceBuffer> on_device;
    std::vector<Tensor> on_host;
    for (const Tensor& t : tensors) {
      if (t.device().is_cpu()) {
        on_host.push_back(t);
        continue;
      }
      MV_CHECK(t.device().type == device_.type && t.is_contiguous(), name(), " ", what,
               " needs contiguous tensors on ", device_.str(), " or the CPU, got ", t.desc());
      on_device.push_back({t.raw_data(), static_cast<size_t>(t.numel()), t.dtype()});
    }
    return {std::move(on_device), std::move(on_host)};
  }

  // Declared first: destroyed after the device collectives it bootstrapped.
  std::unique_ptr<Communicator> host_;
  Device device_;
  std::unique_ptr<Collectives> collectives_;
};

bool DevicePending::test() { return comm_.done(*event_); }

std::array<JoinDeviceCollectives, 3>& joins() {
  static std::array<JoinDeviceCollectives, 3> j{};
  return j;
}

}  // namespace

void register_device_collectives(DeviceType type, JoinDeviceCollectives join) {
  joins()[static_cast<size_t>(type)] = join;
}

JoinDeviceCollectives device_collectives(DeviceType type) {
  return joins()[static_cast<size_t>(type)];
}

std::unique_ptr<Communicator> make_device_communicator(std::unique_ptr<Communicator> host,
                                                       Device device) {
  return std::make_unique<DeviceCommunicator>(std::move(host), device);
}

}  // namespace minivlm
