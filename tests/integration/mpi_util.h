// Helpers for tests that launch processes with mpirun: availability, the launch prefix, and
// running one test of the current binary on several ranks.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "cli_util.h"

namespace minivlm::testing {

// A limit on every launch: a job that hangs fails the test instead of stalling CI.
inline constexpr int kMpiTimeoutSeconds = 180;

// Why mpi tests cannot run here ("" when they can).
inline std::string mpi_unavailable() {
#ifndef MINIVLM_HAVE_MPI
  return "this build has no MPI (MINIVLM_MPI=OFF)";
#else
  static const bool found = run("command -v mpirun").exit_code == 0;
  return found ? "" : "mpirun is not on PATH";
#endif
}

#define MINIVLM_SKIP_WITHOUT_MPI()                                                   \
  do {                                                                               \
    if (const std::string why = ::minivlm::testing::mpi_unavailable(); !why.empty()) \
      GTEST_SKIP() << why;                                                           \
  } while (0)

// The launch prefix for `np` ranks on this machine: root allowed (CI containers), more ranks than
// cores allowed, one OpenMP thread per rank (ranks × threads would oversubscribe the cores).
inline std::string mpirun(int np) {
  return "timeout " + std::to_string(kMpiTimeoutSeconds) +
         " mpirun --allow-run-as-root --oversubscribe -np " + std::to_string(np) +
         " -x OMP_NUM_THREADS=1 ";
}

// True inside a process that mpirun started.
inline bool is_mpi_rank() { return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr; }

// Runs the current test of this binary on `np` ranks under mpirun (each rank runs the same body,
// which sees is_mpi_rank()); `options` go to mpirun (e.g. "-x NAME=value").
inline RunResult run_test_on_ranks(int np, const std::string& options = "") {
  const ::testing::TestInfo* t = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  return run(mpirun(np) + options + " " + self +
             " --gtest_color=no --gtest_filter=" + t->test_suite_name() + "." + t->name());
}

// run_test_on_ranks, checking that every rank passed. Call it first in a test body:
// `if (!is_mpi_rank()) return run_on_ranks(2);`.
inline void run_on_ranks(int np) {
  MINIVLM_SKIP_WITHOUT_MPI();
  const RunResult r = run_test_on_ranks(np);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  int passed = 0;
  for (size_t at = 0; (at = r.output.find("[  PASSED  ] 1 test.", at)) != std::string::npos; ++at)
    ++passed;
  EXPECT_EQ(passed, np) << r.output;
}

}  // namespace minivlm::testing
