// End-to-end training runs: exact resume, stop on a signal, the pretrain → SFT handoff, options,
// the run lock, refused checkpoints, leftovers of interrupted saves, the bad-sample limit.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_util.h"
#include "io/safetensors.h"

extern char** environ;

namespace minivlm {
namespace {

using testing::fresh_dir;
using testing::losses;
using testing::read_file;
using testing::run;
using testing::train_command;
using testing::workspace;

// Six SFT steps in one go (`extra` added): the reference the interrupted runs must reproduce bit
// for bit.
std::string straight_run_with(const std::string& tag, const std::string& extra) {
  const std::string d = fresh_dir("straight" + tag);
  const auto r =
      run(train_command("train_sft", workspace().model, "sft.jsonl", d, "--max-steps 6 " + extra));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return d;
}

const std::string& straight_run() {
  static const std::string dir = straight_run_with("", "");
  return dir;
}

// Half the run, then a resume from its checkpoint, in fp32 and in bf16 (fp32 masters and moments
// in the checkpoint, the bf16 parameters their rounding again): the straight run's bits.
class TrainResumeDtype : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainResumeDtype, HalfThenResumeEqualsStraight) {
  const std::string dtype = "--dtype " + GetParam() + " ";
  const std::string a = GetParam() == "fp32" ? straight_run() : straight_run_with("_bf16", dtype);
  const std::string b = fresh_dir("half");
  auto r = run(train_command("train_sft", workspace().model, "sft.jsonl", b,
                             dtype + "--max-steps 6 --save-every 3"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string c = fresh_dir("resumed");
  r = run(train_command("train_sft", workspace().model, "sft.jsonl", c,
                        dtype + "--max-steps 6 --resume " + b + "/checkpoints/step_00000003"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from"), std::string::npos) << r.output;
  const std::string wa = read_file(a + "/final/model.safetensors");
  ASSERT_GT(wa.size(), 1000u);
  EXPECT_TRUE(wa == read_file(c + "/final/model.safetensors")) << "final weights differ";
  const std::string last = "/checkpoints/step_00000006/optimizer.safetensors";
  ASSERT_GT(read_file(a + last).size(), 1000u);
  EXPECT_TRUE(read_file(a + last) == read_file(c + last)) << "optimizer state differs";
  // The resumed run logs steps 4..6 with the same losses as the straight run.
  const auto la = losses(a), lc = losses(c);
  ASSERT_EQ(la.size(), 6u);
  ASSERT_EQ(lc.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(la[3 + i], lc[i]);
  // Training changed the weights.
  EXPECT_FALSE(wa == read_file(workspace().model + "/model.safetensors"));
}

INSTANTIATE_TEST_SUITE_P(TrainResume, TrainResumeDtype, ::testing::Values("fp32", "bf16"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// Packed rows (--pack): batch_size still counts samples, so the loader's position is the unpacked
// one and a packed run resumes bit for bit; its first step, before any update, has the unpacked
// run's loss.
TEST(TrainResume, PackedRunResumesExactly) {
  const std::string a = fresh_dir("packed_straight");
  auto r =
      run(train_command("train_sft", workspace().model, "sft.jsonl", a, "--max-steps 6 --pack"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string b = fresh_dir("packed_half");
  r = run(train_command("train_sft", workspace().model, "sft.jsonl", b,
                        "--max-steps 6 --save-every 3 --pack 1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string c = fresh_dir("packed_resumed");
  r = run(train_command("train_sft", workspace().model, "sft.jsonl", c,
                        "--max-steps 6 --pack 1 --resume " + b + "/checkpoints/step_00000003"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string wa = read_file(a + "/final/model.safetensors");
  ASSERT_GT(wa.size(), 1000u);
  EXPECT_TRUE(wa == read_file(c + "/final/model.safetensors")) << "final weights differ";
  const auto la = losses(a), lc = losses(c), lu = losses(straight_run());
  ASSERT_EQ(la.size(), 6u);
  ASSERT_EQ(lc.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(la[3 + i], lc[i]);
  ASSERT_EQ(lu.size(), 6u);
  EXPECT_NEAR(la[0], lu[0], 1e-5 * lu[0]);
}

// Every training line says how long its steps waited for their batch: a non-negative number of
// seconds, the mean over the steps since the previous line.
TEST(TrainMetrics, TrainingLinesReportTheDataWait) {
  const auto lines = testing::train_lines(straight_run());
  ASSERT_EQ(lines.size(), 6u);
  for (const auto& j : lines) {
    ASSERT_TRUE(j.contains("data_wait_s")) << j.dump();
    ASSERT_TRUE(j["data_wait_s"].is_number()) << j.dump();
    EXPECT_GE(j["data_wait_s"].get<double>(), 0.0) << j.dump();
    EXPECT_LT(j["data_wait_s"].get<double>(), 600.0) << j.dump();
  }
}

TEST(TrainResume, SigtermFinishesTheStepSavesAndResumesExactly) {
  const std::string& a = straight_run();
  const std::string b = fresh_dir("signal");
  const std::string cmd =
      train_command("train_sft", workspace().model, "sft.jsonl", b, "--max-steps 6");
  pid_t pid;
  const char* args[] = {"/bin/sh", "-c", nullptr, nullptr};
  const std::string exec_cmd = "exec " + cmd + " >" + b + ".log 2>&1";
  args[2] = exec_cmd.c_str();
  ASSERT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(args), environ), 0);
  // Stop it as soon as the first step is logged.
  for (int i = 0; i < 3000 && read_file(b + "/metrics.jsonl").empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << read_file(b + ".log");
  EXPECT_EQ(WEXITSTATUS(status), 0) << read_file(b + ".log");
  const size_t stopped_at = losses(b).size();
  ASSERT_GE(stopped_at, 1u);
  ASSERT_LT(stopped_at, 6u) << "the run finished before the signal arrived";
  EXPECT_FALSE(std::filesystem::exists(b + "/final"));
  const auto r = run(cmd + " --resume auto");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(read_file(a + "/final/model.safetensors") ==
              read_file(b + "/final/model.safetensors"));
}

// Stop signals keep arriving while the step's matrix products run on every thread: the run still
// finishes its step, saves and exits 0 (a handler running on a GEMM thread once corrupted the heap
// in about half of such runs).
TEST(TrainResume, ManySignalsDuringAStepStillStopCleanly) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    const std::string d = fresh_dir("signals_" + std::to_string(attempt));
    const std::string cmd =
        train_command("train_sft", workspace().model, "sft.jsonl", d, "--max-steps 40");
    const std::string exec_cmd = "exec " + cmd + " >" + d + ".log 2>&1";
    const char* args[] = {"/bin/sh", "-c", exec_cmd.c_str(), nullptr};
    pid_t pid;
    ASSERT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(args), environ), 0);
    for (int i = 0; i < 3000 && read_file(d + "/metrics.jsonl").empty(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (int i = 0; i < 200 && kill(pid, SIGTERM) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status)) << read_file(d + ".log");
    EXPECT_EQ(WEXITSTATUS(status), 0) << read_file(d + ".log");
    EXPECT_LT(losses(d).size(), 40u) << "the run finished before the signals arrived";
    EXPECT_NE(read_file(d + ".log").find("stop requested"), std::string::npos)
        << read_file(d + ".log");
  }
}

TEST(TrainResume, PretrainThenSftHandoffResumesExactly) {
  const std::string p = fresh_dir("pretrain");
  auto r =
      run(train_command("train_pretrain", workspace().model, "pretrain.jsonl", p, "--max-steps 3"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The pretrain stage trained only the projector: the LLM weights are unchanged.
  const std::string s1 = fresh_dir("sft_straight"), s2 = fresh_dir("sft_half"),
                    s3 = fresh_dir("sft_resumed");
  r = run(train_command("train_sft", p + "/final", "sft.jsonl", s1, "--max-steps 4"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run(
      train_command("train_sft", p + "/final", "sft.jsonl", s2, "--max-steps 4 --save-every 2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run(train_command("train_sft", p + "/final", "sft.jsonl", s3,
                        "--max-steps 4 --resume " + s2 + "/checkpoints/step_00000002"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(read_file(s1 + "/final/model.safetensors") ==
              read_file(s3 + "/final/model.safetensors"));
}

// When only the projector trains, a step of text-only samples reaches no trainable parameter: its
// gradient is zero (as a rank without images gets from the reduction), not an error.
TEST(TrainResume, ProjectorOnlyStepsOfTextOnlySamplesHaveZeroGradient) {
  const std::string d = fresh_dir("text_only_pretrain");
  const std::string data = d + "_data.jsonl";
  {
    std::ofstream f(data);
    for (int i = 0; i < 8; ++i)
      f << R"({"conversations": [{"role": "user", "content": "Hello )" << i
        << R"("}, {"role": "assistant", "content": "Hi there, number )" << i << R"(."}]})"
        << "\n";
  }
  const std::string cmd = testing::kBin + "/train_pretrain --model " + workspace().model +
                          " --data " + data + " --images " + workspace().images + " --out " + d +
                          " --batch-size 2 --max-steps 2 --log-every 1";
  const auto r = run(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<nlohmann::json> lines = testing::train_lines(d);
  ASSERT_EQ(lines.size(), 2u);
  for (const nlohmann::json& l : lines) {
    EXPECT_EQ(l.at("grad_norm").get<double>(), 0.0) << l.dump();
    EXPECT_TRUE(std::isfinite(l.at("loss").get<double>())) << l.dump();
  }
  // The frozen LLM is untouched.
  const SafeTensorsFile before = SafeTensorsFile::open(workspace().model + "/model.safetensors");
  const SafeTensorsFile after = SafeTensorsFile::open(d + "/final/model.safetensors");
  for (const std::string& name : before.names())
    if (name.rfind("vision_proj.", 0) != 0) {
      EXPECT_EQ(before.get(name).to_float_vector(), after.get(name).to_float_vector()) << name;
    }
}

// Impossible values are refused by name before anything runs.
TEST(TrainOptions, ImpossibleValuesAreRefused) {
  const std::string d = fresh_dir("impossible");
  const std::pair<const char*, const char*> cases[] = {
      {"--max-steps -1", "max_steps must be >= 0"},
      {"--min-lr-ratio -0.5", "min_lr_ratio must be in [0, 1]"},
      {"--warmup-steps -3", "warmup_steps must be >= 0"},
      {"--grad-clip -1", "grad_clip must be >= 0"},
      {"--save-every -2", "save_every must be >= 0"},
      {"--weight-decay -0.1", "weight_decay must be >= 0"}};
  for (const auto& [flag, message] : cases) {
    const auto r = run(train_command("train_sft", workspace().model, "sft.jsonl", d, flag));
    EXPECT_NE(r.exit_code, 0) << flag;
    EXPECT_NE(r.output.find(message), std::string::npos) << flag << "\n" << r.output;
    EXPECT_FALSE(std::filesystem::exists(d + "/metrics.jsonl")) << flag;
  }
}

// A max_seq_len beyond the model's context (512 in the fixture) is cut to it with a note, instead
// of ending the run when a long sample reaches the forward pass.
TEST(TrainOptions, MaxSeqLenIsCappedAtTheModelsContext) {
  const std::string d = fresh_dir("long_context");
  const std::string cmd = testing::kBin + "/train_sft --model " + workspace().model + " --data " +
                          workspace().data + "/sft.jsonl --images " + workspace().images +
                          " --out " + d + " --batch-size 2 --max-steps 1 --max-seq-len 100000";
  const auto r = run(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("max_seq_len 100000 exceeds the model's context "
                          "(llm.max_position_embeddings 512)"),
            std::string::npos)
      << r.output;
}

TEST(TrainOptions, UnknownOptionListsValidOnesAndRunJsonIsWritten) {
  const std::string d = fresh_dir("options");
  auto r = run(train_command("train_sft", workspace().model, "sft.jsonl", d, "--max-step 2"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("unknown option --max-step"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--max_steps"), std::string::npos) << r.output;
  r = run(train_command("train_pretrain", workspace().model, "pretrain.jsonl", d,
                        "--max_steps 1 --grad-accum 2 --device cuda-emu"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Training runs on the requested device: no note about falling back to the CPU.
  EXPECT_EQ(r.output.find("note: --device"), std::string::npos) << r.output;
  const auto run_json = nlohmann::json::parse(read_file(d + "/run.json"));
  EXPECT_EQ(run_json["max_steps"], 1);
  EXPECT_EQ(run_json["grad_accum"], 2);
  EXPECT_EQ(run_json["train"], "projector");
  EXPECT_EQ(run_json["device"], "cuda-emu");
  EXPECT_EQ(run_json["global_batch"], 8);
  const auto line = nlohmann::json::parse(
      read_file(d + "/metrics.jsonl").substr(0, read_file(d + "/metrics.jsonl").find('\n')));
  for (const char* k : {"step", "epoch", "loss", "lr", "grad_norm", "tokens_per_s", "skipped"})
    EXPECT_TRUE(line.contains(k)) << k << " missing in " << line.dump();
}

TEST(TrainGuards, NonFiniteStepsAreSkippedThenAbort) {
  // A model whose final norm holds a NaN: every loss is NaN.
  const auto& w = workspace();
  const std::string model = fresh_dir("nan_model");
  std::vector<std::pair<std::string, Tensor>> tensors;
  const SafeTensorsFile f = SafeTensorsFile::open(w.model + "/model.safetensors");
  for (const std::string& n : f.names()) {
    Tensor t = f.get(n).clone();
    if (n == "model.norm.weight") t.data<float>()[3] = NAN;
    tensors.emplace_back(n, t);
  }
  save_safetensors(model + "/model.safetensors", tensors);
  std::filesystem::copy_file(w.model + "/config.json", model + "/config.json");
  std::filesystem::copy_file(w.model + "/tokenizer.json", model + "/tokenizer.json");
  const std::string d = fresh_dir("nan_run");
  const auto r = run(
      train_command("train_sft", model, "sft.jsonl", d, "--max-steps 10 --max-nonfinite-steps 3"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("4 steps in a row had a non-finite loss or gradient"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("step 1: non-finite loss or gradient, step skipped"), std::string::npos)
      << r.output;
  // Loading named the tensor.
  EXPECT_NE(r.output.find("non-finite weights:\n  model.norm.weight: 1 of 64"), std::string::npos)
      << r.output;
}

TEST(TrainEval, PeriodicHeldOutEvaluationIsLogged) {
  const auto& w = workspace();
  const std::string d = fresh_dir("periodic_eval");
  const auto r =
      run(train_command("train_sft", w.model, "sft.jsonl", d,
                        "--max-steps 4 --eval-every 2 --eval " + w.data + "/eval.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream in(read_file(d + "/metrics.jsonl"));
  std::vector<int64_t> eval_steps;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (!j.contains("eval_loss")) continue;
    eval_steps.push_back(j["step"].get<int64_t>());
    EXPECT_GT(j["eval_loss"].get<double>(), 0.0);
    EXPECT_NEAR(j["eval_ppl"].get<double>(), std::exp(j["eval_loss"].get<double>()),
                1e-6 * j["eval_ppl"].get<double>());
    EXPECT_EQ(j["eval_samples"], 12);
  }
  EXPECT_EQ(eval_steps, (std::vector<int64_t>{2, 4}));
}

// Starts `cmd` in the background (its output to `log`); returns its pid.
pid_t spawn(const std::string& cmd, const std::string& log) {
  const std::string exec_cmd = "exec " + cmd + " >" + log + " 2>&1";
  const char* args[] = {"/bin/sh", "-c", exec_cmd.c_str(), nullptr};
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(args), environ), 0);
  return pid;
}

// A second trainer on a run directory in use fails at once naming the holder's pid, host and the
// lock's path; once the holder is killed with SIGKILL a third starts (noting the stale lock file),
// removes the leftovers of interrupted saves, and leaves the lock file empty when it ends.
TEST(TrainLock, SecondTrainerOnTheSameOutFailsAndAKilledHolderDoesNotBlock) {
  const std::string d = fresh_dir("locked");
  const pid_t holder =
      spawn(train_command("train_sft", workspace().model, "sft.jsonl", d, "--max-steps 100000"),
            d + ".log");
  for (int i = 0; i < 6000 && read_file(d + "/metrics.jsonl").empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_FALSE(read_file(d + "/metrics.jsonl").empty()) << read_file(d + ".log");
  char host[256] = {};
  gethostname(host, sizeof host - 1);

  const auto t0 = std::chrono::steady_clock::now();
  auto r = run(train_command("train_sft", workspace().model, "sft.jsonl", d, "--max-steps 1"));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(secs, 20) << r.output;
  EXPECT_NE(r.output.find("another trainer is running on " + d + ": its lock " + d +
                          "/.lock is held by pid " + std::to_string(holder) + " on host " + host +
                          " (started "),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("resumed"), std::string::npos) << r.output;

  kill(holder, SIGKILL);
  waitpid(holder, nullptr, 0);
  // What kills inside a save, a prune and a final/ write leave behind.
  std::filesystem::create_directories(d + "/checkpoints/.tmp_step_00000099");
  std::ofstream(d + "/checkpoints/.tmp_step_00000099/DONE") << "ok\n";
  std::filesystem::create_directories(d + "/checkpoints/.del_step_00000007");
  std::filesystem::create_directories(d + "/.tmp_final");

  r = run(train_command("train_sft", workspace().model, "sft.jsonl", d, "--max-steps 2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("note: " + d +
                          "/.lock was left by a trainer that did not exit cleanly "
                          "(pid " +
                          std::to_string(holder)),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("error"), std::string::npos) << r.output;
  for (const char* left :
       {"/checkpoints/.tmp_step_00000099", "/checkpoints/.del_step_00000007", "/.tmp_final"}) {
    EXPECT_NE(r.output.find("note: removed " + d + left), std::string::npos) << left << r.output;
    EXPECT_FALSE(std::filesystem::exists(d + left)) << left;
  }
  EXPECT_TRUE(std::filesystem::exists(d + "/final/model.safetensors"));
  EXPECT_EQ(read_file(d + "/.lock"), "");  // released cleanly: nothing stale for the next run
}

// A run on a directory whose final/ exists replaces it whole (no temporary or set-aside copy left).
TEST(TrainFinal, AnExistingFinalIsReplaced) {
  const std::string d = fresh_dir("final_replaced");
  auto r = run(train_command("train_sft", workspace().model, "sft.jsonl", d, "--max-steps 1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string first = read_file(d + "/final/model.safetensors");
  r = run(train_command("train_sft", workspace().model, "sft.jsonl", d, "--max-steps 3"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("note:"), std::string::npos) << r.output;  // nothing stale
  const std::string second = read_file(d + "/final/model.safetensors");
  ASSERT_GT(second.size(), 1000u);
  EXPECT_TRUE(first != second) << "final/ was not replaced";
  // It holds the weights of the second run's last checkpoint.
  const SafeTensorsFile fin = SafeTensorsFile::open(d + "/final/model.safetensors");
  const SafeTensorsFile ck =
      SafeTensorsFile::open(d + "/checkpoints/step_00000003/model.safetensors");
  ASSERT_EQ(fin.names(), ck.names());
  for (const std::string& n : fin.names())
    EXPECT_TRUE(fin.get(n).to_float_vector() == ck.get(n).to_float_vector()) << n;
  std::vector<std::string> hidden;
  for (const auto& e : std::filesystem::directory_iterator(d)) {
    const std::string name = e.path().filename().string();
    if (name[0] == '.' && name != ".lock") hidden.push_back(name);
  }
  EXPECT_TRUE(hidden.empty()) << hidden.front();
}

// Every file under `dir` (relative name → bytes).
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file())
      out[std::filesystem::relative(e.path(), dir).string()] = read_file(e.path().string());
  return out;
}

// A resumed run whose learning rate blows the weights up (beyond ±1e30, still finite) applies the
// step but refuses its checkpoint: the run stops with an error naming a tensor, and the good
// checkpoints and final/ of the earlier run are untouched (with keep 2, pruning after a step 3
// checkpoint would have removed step 1).
TEST(TrainGuards, ExplodedWeightsAreNeverCheckpointed) {
  const std::string d = fresh_dir("exploded");
  auto r = run(train_command("train_sft", workspace().model, "sft.jsonl", d,
                             "--max-steps 2 --save-every 1 --keep-checkpoints 2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ckpts = snapshot(d + "/checkpoints"), final_dir = snapshot(d + "/final");
  ASSERT_TRUE(ckpts.count("step_00000001/DONE") && ckpts.count("step_00000002/DONE"));
  r = run(train_command("train_sft", workspace().model, "sft.jsonl", d,
                        "--max-steps 4 --save-every 1 --keep-checkpoints 2 --resume auto "
                        "--lr 1e32 --warmup-steps 0"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("refusing to write checkpoint " + d + "/checkpoints/step_00000003: "),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("values non-finite or beyond ±1e30"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("model tensor 'model."), std::string::npos) << r.output;
  EXPECT_EQ(losses(d).size(), 3u);  // steps 1, 2 and the exploding step 3
  EXPECT_EQ(snapshot(d + "/checkpoints"), ckpts);
  EXPECT_EQ(snapshot(d + "/final"), final_dir);
}

// A data file whose samples are nearly all bad stops once 100 samples have been seen, long before
// the first epoch of 500 steps ends, with an error naming the fraction and the option.
TEST(TrainGuards, BadFractionStopsTheRunEarly) {
  const std::string d = fresh_dir("mostly_bad");
  std::istringstream in(read_file(workspace().data + "/sft.jsonl"));
  std::vector<std::string> good;
  for (std::string line; std::getline(in, line);) good.push_back(line);
  ASSERT_FALSE(good.empty());
  std::string text;
  for (int i = 0; i < 2000; ++i)
    text += i % 20 == 0 ? good[static_cast<size_t>(i / 20) % good.size()] + "\n"
                        : "{\"conversations\": oops\n";
  std::ofstream(d + "/data.jsonl") << text;
  const std::string cmd = testing::kBin + "/train_sft --model " + workspace().model + " --data " +
                          d + "/data.jsonl --images " + workspace().images + " --out " + d +
                          "/run --batch-size 4 --log-every 1 --max-seq-len 256 "
                          "--max-bad-fraction 0.01";
  const auto r = run(cmd);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("of 100 samples seen so far were bad, more than max_bad_fraction 0.01 "
                          "(--max-bad-fraction) allows"),
            std::string::npos)
      << r.output.substr(r.output.size() > 3000 ? r.output.size() - 3000 : 0);
  EXPECT_LT(losses(d + "/run").size(), 25u);
  EXPECT_FALSE(std::filesystem::exists(d + "/run/final"));
}
}  // namespace
}  // namespace minivlm
