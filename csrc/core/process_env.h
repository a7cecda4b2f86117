// Process-wide runtime settings that must be in place before the OpenMP runtime starts.
#pragma once

namespace minivlm {

// OpenMP threads that finish early wait passively unless the user chose otherwise: on a loaded
// machine, spinning waiters steal the cores the working threads need (measured 3x slower training
// with 2 cores under load). libgomp reads OMP_WAIT_POLICY once, when it is loaded, so when the
// variable is unset this sets it and re-executes the program (same pid, same arguments).
void ensure_passive_openmp_wait(char** argv);

}  // namespace minivlm
