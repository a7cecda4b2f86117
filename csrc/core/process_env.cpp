#include "core/process_env.h"

#include <unistd.h>

#include <cstdlib>

namespace minivlm {

void ensure_passive_openmp_wait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);
  // exec failed (no /proc): carry on with the runtime's default policy.
}

}  // namespace minivlm
