// A small, portable, serializable random generator (xoshiro256**, seeded through splitmix64).
// Its streams are identical on every platform and standard library, which resume-exactness and
// cross-rank data order rely on (std:: distributions are implementation-defined).
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace minivlm {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed);
  uint64_t next_u64();
  double uniform();                                // [0, 1)
  uint64_t below(uint64_t n);                      // [0, n), unbiased
  double normal(double mean = 0, double std = 1);  // Box–Muller
  // State as text ("s0 s1 s2 s3 has_spare spare_bits") for checkpoints.
  std::string state() const;
  void set_state(const std::string& s);

 private:
  std::array<uint64_t, 4> s_{};
  bool has_spare_ = false;
  double spare_ = 0;
};

}  // namespace minivlm
