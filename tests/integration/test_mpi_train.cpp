// Data-parallel training under mpirun, end to end: two ranks match one process on the same global
// batches (on the CPU in fp32 and bf16, and on cuda-emu), resume on two ranks is exact, resume on
// another process count continues at the same sample, and a rank that fails on bad input ends the
// job with a message naming it.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "data/loader.h"
#include "io/safetensors.h"
#include "mpi_util.h"

extern char** environ;

namespace minivlm {
namespace {

using testing::fresh_dir;
using testing::kBin;
using testing::losses;
using testing::mpirun;
using testing::read_file;
using testing::run;
using testing::RunResult;
using testing::workspace;

// One process with the threads of one rank: same-thread-count runs can be compared bit for bit.
const std::string kAlone = "OMP_NUM_THREADS=1 ";

// train_sft on the synthetic workspace (its model unless `model` is given); `launcher` is kAlone
// or mpirun(n).
RunResult train(const std::string& launcher, const std::string& out, const std::string& extra,
                const std::string& data = "", const std::string& model = "") {
  const auto& w = workspace();
  return run(launcher + kBin + "/train_sft --model " + (model.empty() ? w.model : model) +
             " --data " + (data.empty() ? w.data + "/sft.jsonl" : data) + " --images " + w.images +
             " --out " + out + " --lr 2e-3 --log-every 1 --max-seq-len " +
             (model.empty() ? "256" : "512") + " --seed 42 " + extra);
}

double max_relative(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    worst = std::max(worst, std::abs(a[i] - b[i]) / std::abs(a[i]));
  return worst;
}

// max over tensors of ‖a − b‖ / ‖a‖.
double max_tensor_relative(const std::string& a_path, const std::string& b_path) {
  const SafeTensorsFile a = SafeTensorsFile::open(a_path), b = SafeTensorsFile::open(b_path);
  EXPECT_EQ(a.names(), b.names());
  double worst = 0;
  for (const std::string& name : a.names()) {
    const std::vector<double> x = a.get(name).to_double_vector(),
                              y = b.get(name).to_double_vector();
    double diff2 = 0, norm2 = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      diff2 += (x[i] - y[i]) * (x[i] - y[i]);
      norm2 += x[i] * x[i];
    }
    if (norm2 > 0) worst = std::max(worst, std::sqrt(diff2 / norm2));
  }
  return worst;
}

// `steps` steps of global batch 4 three ways, `options` added to each: one process accumulating
// two micro-batches of 2, two ranks with one micro-batch of 2 each (several gradient buckets), one
// process with micro-batches of 4. The two-rank job names `engine` as its communicator. The
// micro-batches of 4 round differently: their losses and weights agree to `tolerance` (relative).
void expect_two_ranks_match_one_process(const std::string& tag, int steps,
                                        const std::string& options, const std::string& engine,
                                        double tolerance = 1e-5) {
  const std::string accum = fresh_dir(tag + "accum"), ranks = fresh_dir(tag + "ranks"),
                    wide = fresh_dir(tag + "wide");
  const std::string common = options + "--max-steps " + std::to_string(steps) + " ";
  RunResult r = train(kAlone, accum, common + "--batch-size 2 --grad-accum 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = train(mpirun(2) + "-x MINIVLM_BUCKET_MB=0.25 ", ranks, common + "--batch-size 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("2 (" + engine + ")"), std::string::npos) << r.output;
  r = train(kAlone, wide, common + "--batch-size 4");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto run_json = nlohmann::json::parse(read_file(ranks + "/run.json"));
  EXPECT_EQ(run_json["world_size"], 2);
  EXPECT_EQ(run_json["global_batch"], 4);

  const auto la = losses(accum), lr = losses(ranks), lw = losses(wide);
  const auto n = static_cast<size_t>(steps);
  ASSERT_EQ(la.size(), n);
  ASSERT_EQ(lr.size(), n);
  ASSERT_EQ(lw.size(), n);
  // The same micro-batches, their gradients added by the communicator instead of by
  // accumulation: a + b either way, so the same bits.
  EXPECT_EQ(la, lr);
  EXPECT_TRUE(read_file(accum + "/final/model.safetensors") ==
              read_file(ranks + "/final/model.safetensors"));
  // Other micro-batch shapes (padding, GEMM sizes): equal to float rounding. Elements near zero
  // carry AdamW's sign-sensitive updates, so weights compare per tensor.
  const double loss_diff = max_relative(lw, lr);
  const double weight_diff =
      max_tensor_relative(wide + "/final/model.safetensors", ranks + "/final/model.safetensors");
  std::printf("%s2 ranks × 2 vs 1 process × 4: max relative loss difference %.3g, weights %.3g\n",
              options.c_str(), loss_diff, weight_diff);
  EXPECT_LE(loss_diff, tolerance);
  EXPECT_LE(weight_diff, tolerance);
  // Training moved: the check above compares trained weights, not the initial ones twice.
  EXPECT_GT(max_tensor_relative(workspace().model + "/model.safetensors",
                                ranks + "/final/model.safetensors"),
            1e-3);
}

TEST(MpiTrain, TwoRanksMatchOneProcessOnTheSameGlobalBatch) {
  MINIVLM_SKIP_WITHOUT_MPI();
  expect_two_ranks_match_one_process("", 20, "", "mpi");
}

// bf16 on the CPU: the ranks' fp32 gradients of the bf16 parameters summed by MPI in fp32, as
// accumulation adds them, so two ranks still give one process's bits. Micro-batches of 4 round
// their activations differently: losses agree to bf16 rounding, and the fp32 master weights to
// 1/128 (AdamW's first steps move each weight by about ±lr whatever its gradient's size, so a
// gradient near zero whose sign differs moves a weight by twice that).
TEST(MpiTrain, TwoRanksInBf16MatchOneProcessOnTheSameGlobalBatch) {
  MINIVLM_SKIP_WITHOUT_MPI();
  expect_two_ranks_match_one_process("bf16_", 4, "--dtype bf16 ", "mpi", 1.0 / 128);
}

// The CUDA back-end's data-parallel path on the emulated device: gradients of cuda-emu parameters
// summed by the device communicator (NCCL's code path, its collectives emulated over MPI).
TEST(MpiTrain, TwoRanksOnCudaEmuMatchOneProcessOnTheSameGlobalBatch) {
  MINIVLM_SKIP_WITHOUT_MPI();
  expect_two_ranks_match_one_process("emu_", 4, "--device cuda-emu ", "nccl-emu");
}

// A Hugging Face SmolVLM directory (image splitting: ten tiles an image) trains data-parallel as a
// minivlm one does: two ranks give the bits of one process accumulating the same micro-batches,
// and both write final/ in the Hugging Face layout.
TEST(MpiTrain, SmolVlmDirectoryOnTwoRanksMatchesOneProcess) {
  MINIVLM_SKIP_WITHOUT_MPI();
  const std::string model = testing::kSource + "/tests/goldens/smolvlm/tied_split";
  const std::string accum = fresh_dir("smol_accum"), ranks = fresh_dir("smol_ranks");
  RunResult r = train(kAlone, accum, "--max-steps 2 --batch-size 1 --grad-accum 2", "", model);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = train(mpirun(2), ranks, "--max-steps 2 --batch-size 1", "", model);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(losses(accum).size(), 2u);
  EXPECT_EQ(losses(accum), losses(ranks));
  EXPECT_TRUE(read_file(accum + "/final/model.safetensors") ==
              read_file(ranks + "/final/model.safetensors"));
  EXPECT_EQ(read_file(ranks + "/final/config.json"), read_file(model + "/config.json"));
}

// Six steps on two ranks straight, and three + resume + three: the same bits.
TEST(MpiTrain, ResumeOnTwoRanksIsExact) {
  MINIVLM_SKIP_WITHOUT_MPI();
  const std::string straight = fresh_dir("straight"), half = fresh_dir("half"),
                    resumed = fresh_dir("resumed");
  RunResult r = train(mpirun(2), straight, "--max-steps 6 --batch-size 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = train(mpirun(2), half, "--max-steps 6 --batch-size 2 --save-every 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string ckpt = half + "/checkpoints/step_00000003";
  const auto state = nlohmann::json::parse(read_file(ckpt + "/trainer_state.json"));
  ASSERT_EQ(state["ranks"].size(), 2u);  // each rank's loader and RNG
  EXPECT_NE(state["ranks"][0]["rng"], state["ranks"][1]["rng"]);
  r = train(mpirun(2), resumed, "--max-steps 6 --batch-size 2 --resume " + ckpt);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from"), std::string::npos) << r.output;
  EXPECT_TRUE(read_file(straight + "/final/model.safetensors") ==
              read_file(resumed + "/final/model.safetensors"))
      << "final weights differ";
  const auto ls = losses(straight), lr = losses(resumed);
  ASSERT_EQ(ls.size(), 6u);
  ASSERT_EQ(lr.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(ls[3 + i], lr[i]) << "step " << 4 + i;
}

// A checkpoint of two ranks × 2 samples resumed by one process × 4: the same global batches follow.
TEST(MpiTrain, ResumeOnAnotherProcessCountContinuesAtTheSameSample) {
  MINIVLM_SKIP_WITHOUT_MPI();
  const std::string straight = fresh_dir("straight2"), half = fresh_dir("half2"),
                    resumed = fresh_dir("resumed_alone");
  RunResult r = train(mpirun(2), straight, "--max-steps 6 --batch-size 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = train(mpirun(2), half, "--max-steps 6 --batch-size 2 --save-every 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = train(kAlone, resumed,
            "--max-steps 6 --batch-size 4 --resume " + half + "/checkpoints/step_00000003");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resuming a run of 2 processes on 1: continuing at sample 12 of epoch 0"),
            std::string::npos)
      << r.output;
  const auto ls = losses(straight), lr = losses(resumed);
  ASSERT_EQ(ls.size(), 6u);
  ASSERT_EQ(lr.size(), 3u);
  const double loss_diff = max_relative({ls.begin() + 3, ls.end()}, lr);
  const double weight_diff = max_tensor_relative(straight + "/final/model.safetensors",
                                                 resumed + "/final/model.safetensors");
  std::printf("resumed alone vs 2 ranks: max relative loss difference %.3g, weights %.3g\n",
              loss_diff, weight_diff);
  EXPECT_LE(loss_diff, 1e-5);
  EXPECT_LE(weight_diff, 1e-5);
}

// Every sample of rank 1's share names a missing image; rank 0's are fine. Rank 1 passes the
// bad-sample limit at the end of the epoch while rank 0 waits in the next step's collectives: the
// job must end, non-zero, naming rank 1, well before the launch timeout.
TEST(MpiTrain, RankFailingOnBadInputEndsTheJobNamingIt) {
  MINIVLM_SKIP_WITHOUT_MPI();
  const std::string dir = fresh_dir("bad_rank");
  std::vector<std::string> lines;
  {
    std::istringstream in(read_file(workspace().data + "/sft.jsonl"));
    for (std::string line; lines.size() < 16 && std::getline(in, line);) lines.push_back(line);
  }
  // Global batch 4 = 2 ranks × 2: rank 1 takes permutation positions 4s+2 and 4s+3 of step s.
  const std::vector<uint32_t> perm = epoch_permutation(lines.size(), 42, 0);
  for (size_t s = 0; s < 4; ++s) {
    for (size_t k : {4 * s + 2, 4 * s + 3}) {
      auto j = nlohmann::json::parse(lines[perm[k]]);
      j["image"] = "missing_" + std::to_string(perm[k]) + ".png";
      lines[perm[k]] = j.dump();
    }
  }
  std::ofstream(dir + "/sft.jsonl") << [&] {
    std::string all;
    for (const std::string& l : lines) all += l + "\n";
    return all;
  }();
  const auto t0 = std::chrono::steady_clock::now();
  const RunResult r =
      train(mpirun(2), dir + "/run", "--max-steps 8 --batch-size 2", dir + "/sft.jsonl");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, 124) << "the job hung until the timeout:\n" << r.output;
  EXPECT_LT(secs, 60) << r.output;
  EXPECT_NE(r.output.find("rank 1: error: train_sft: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("8 of 8 samples in epoch 0 were bad, more than max_bad_fraction"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("rank 0: error"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir + "/run/final"));
}

// Two jobs on the same run directory collide on rank 0's lock: the second ends at once, non-zero,
// naming the lock and the holder's pid, and leaves the first running.
TEST(MpiTrain, TwoJobsOnTheSameOutCollide) {
  MINIVLM_SKIP_WITHOUT_MPI();
  const std::string dir = fresh_dir("two_jobs");
  const auto& w = workspace();
  const std::string first = "exec " + mpirun(2) + kBin + "/train_sft --model " + w.model +
                            " --data " + w.data + "/sft.jsonl --images " + w.images + " --out " +
                            dir + "/run --batch-size 2 --log-every 1 --max-seq-len 256 " +
                            "--max-steps 100000 >" + dir + "/first.log 2>&1";
  const char* args[] = {"/bin/sh", "-c", first.c_str(), nullptr};
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(args), environ), 0);
  for (int i = 0; i < 12000 && read_file(dir + "/run/metrics.jsonl").empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_FALSE(read_file(dir + "/run/metrics.jsonl").empty()) << read_file(dir + "/first.log");
  const auto t0 = std::chrono::steady_clock::now();
  const RunResult r = train(mpirun(2), dir + "/run", "--batch-size 2 --max-steps 1");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  kill(pid, SIGTERM);  // timeout passes it to mpirun, which stops the ranks
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(secs, 60) << r.output;
  EXPECT_NE(r.output.find("another trainer is running on " + dir + "/run: its lock " + dir +
                          "/run/.lock is held by pid "),
            std::string::npos)
      << r.output;
  EXPECT_EQ(read_file(dir + "/first.log").find("error"), std::string::npos)
      << read_file(dir + "/first.log");
}
}  // namespace
}  // namespace minivlm
