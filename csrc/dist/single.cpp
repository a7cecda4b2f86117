#include <cstdio>
#include <cstdlib>

#include "dist/communicator.h"

namespace minivlm {

namespace {

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string name() const override { return "single"; }
  void all_reduce_sum(const std::vector<Tensor>&) override {}
  void all_reduce_sum(std::vector<double>&) override {}
  void broadcast(const std::vector<Tensor>&, int) override {}
  void broadcast(std::string&, int) override {}
  std::vector<std::string> all_gather(const std::string& text) override { return {text}; }
  void barrier() override {}
  [[noreturn]] void abort(const std::string& message) override {
    std::fprintf(stderr, "error: %s\n", message.c_str());
    std::fflush(stderr);
    std::_Exit(1);
  }
};

}  // namespace

std::unique_ptr<Communicator> make_single_communicator() {
  return std::make_unique<SingleProcess>();
}

}  // namespace minivlm
