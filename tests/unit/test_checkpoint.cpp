// A save killed with SIGKILL at any moment leaves every earlier checkpoint loadable; non-finite or
// exploded tensors are never written and never cost a good checkpoint; final/-style directory
// replacement survives kills; leftovers of interrupted saves are cleaned up.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/rng.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"

namespace minivlm {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

CheckpointData data_for_step(int64_t step) {
  CheckpointData d;
  // Large enough that writing takes a while, so kills land inside the save.
  d.model.emplace_back("w", Tensor::full({1 << 21}, static_cast<double>(step)));
  d.optimizer.emplace_back("w.exp_avg", Tensor::full({1 << 20}, static_cast<double>(-step)));
  d.state = {{"step", step}};
  return d;
}

void expect_loadable(const std::string& dir) {
  const LoadedCheckpoint c = load_checkpoint(dir);
  const int64_t step = c.state.at("step").get<int64_t>();
  EXPECT_EQ(dir.substr(dir.size() - 8), checkpoint_name(step).substr(5));
  const Tensor w = SafeTensorsFile::open(c.model_path).get("w");
  EXPECT_EQ(w.to_float_vector().back(), static_cast<float>(step));
  EXPECT_EQ(c.optimizer.at("w.exp_avg").to_float_vector().front(), static_cast<float>(-step));
}

TEST(Checkpoint, SigkillDuringSaveLeavesThePreviousOneLoadable) {
  const std::string run = ::testing::TempDir() + "minivlm_ckpt_kill";
  std::filesystem::remove_all(run);
  save_checkpoint(run, 1, data_for_step(1), 0);
  Rng rng(11);
  int64_t next = 2;
  int killed_inside = 0;
  for (int trial = 0; trial < 16; ++trial) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {  // the child saves forever
      for (int64_t s = next;; ++s) save_checkpoint(run, s, data_for_step(s), 2);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng.below(60000)));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    const auto latest = latest_checkpoint(run);
    ASSERT_TRUE(latest.has_value());
    expect_loadable(*latest);
    // Every directory that claims completeness loads; incomplete ones are never chosen.
    for (const auto& e : std::filesystem::directory_iterator(run + "/checkpoints")) {
      const bool candidate = e.path().filename().string().rfind("step_", 0) == 0;
      if (candidate && std::filesystem::exists(e.path() / "DONE"))
        expect_loadable(e.path().string());
      else
        ++killed_inside;  // a temporary or half-pruned directory, which loading never picks
    }
    next = std::stoll(latest->substr(latest->size() - 8)) + 1;
  }
  EXPECT_GT(killed_inside, 0) << "no kill landed inside a save";
}

TEST(Checkpoint, KeepsTheNewestAndIgnoresIncompleteOnes) {
  const std::string run = ::testing::TempDir() + "minivlm_ckpt_keep";
  std::filesystem::remove_all(run);
  for (int64_t s : {10, 20, 30}) save_checkpoint(run, s, data_for_step(s), 2);
  EXPECT_FALSE(std::filesystem::exists(run + "/checkpoints/step_00000010"));
  EXPECT_TRUE(std::filesystem::exists(run + "/checkpoints/step_00000020/DONE"));
  std::filesystem::create_directories(run + "/checkpoints/step_00000040");  // no DONE
  EXPECT_EQ(*latest_checkpoint(run), run + "/checkpoints/step_00000030");
  EXPECT_THROW(load_checkpoint(run + "/checkpoints/step_00000040"), Error);
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Every file under `dir` (relative name → bytes).
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = slurp(e.path());
  return out;
}

CheckpointData small_data(int64_t step) {
  CheckpointData d;
  d.model.emplace_back("a", Tensor::full({16}, 0.5));
  d.model.emplace_back("w", Tensor::full({64}, static_cast<double>(step)));
  d.optimizer.emplace_back("w.exp_avg", Tensor::full({64}, 0.25));
  d.optimizer.emplace_back("w.exp_avg_sq", Tensor::full({64}, 1e35));  // large is fine
  d.state = {{"step", step}};
  return d;
}

void set_element(CheckpointData& d, bool model, const std::string& name, int64_t i, float v) {
  for (auto& [n, t] : model ? d.model : d.optimizer)
    if (n == name) {
      t = t.clone();
      t.data<float>()[i] = v;
    }
}

// A save whose model or optimizer tensors hold NaN, ±inf or a weight beyond ±1e30 throws an error
// naming the tensor before anything is written: the complete checkpoints and their files stay as
// they were, nothing temporary is left, and no pruning happens (keep 1 would otherwise remove
// step 2 in favour of the refused step 3).
TEST(Checkpoint, NonFiniteOrExplodedTensorsAreRefusedAndNothingIsLost) {
  const std::string run = ::testing::TempDir() + "minivlm_ckpt_refuse";
  fs::remove_all(run);
  save_checkpoint(run, 1, small_data(1), 0);
  save_checkpoint(run, 2, small_data(2), 0);
  const auto before = snapshot(run);
  struct Case {
    bool model;
    const char* tensor;
    float value;
    const char* message;
  };
  const Case cases[] = {
      {true, "w", NAN, "model tensor 'w': 1 of 64 values non-finite or beyond ±1e30 (first nan"},
      {true, "a", -INFINITY, "model tensor 'a': 1 of 16 values non-finite or beyond ±1e30"},
      {true, "w", 2e30f,
       "model tensor 'w': 1 of 64 values non-finite or beyond ±1e30 (first 2e+30"},
      {false, "w.exp_avg_sq", INFINITY,
       "optimizer tensor 'w.exp_avg_sq': 1 of 64 values "
       "non-finite (first inf at index 7)"},
      {false, "w.exp_avg", NAN, "optimizer tensor 'w.exp_avg': 1 of 64 values non-finite"},
  };
  for (const Case& c : cases) {
    CheckpointData d = small_data(3);
    set_element(d, c.model, c.tensor, 7, c.value);
    EXPECT_THAT([&] { save_checkpoint(run, 3, d, 1); },
                ThrowsMessage<Error>(AllOf(
                    HasSubstr("refusing to write checkpoint " + run + "/checkpoints/step_00000003"),
                    HasSubstr(c.message), HasSubstr("the checkpoints already written are kept"))))
        << c.tensor << " = " << c.value;
    EXPECT_EQ(snapshot(run), before) << c.tensor << " = " << c.value;
  }
  EXPECT_EQ(*latest_checkpoint(run), run + "/checkpoints/step_00000002");
  // A weight just below the threshold is a weight.
  CheckpointData d = small_data(3);
  set_element(d, true, "w", 0, 9e29f);
  EXPECT_NO_THROW(save_checkpoint(run, 3, d, 1));
  EXPECT_FALSE(fs::exists(run + "/checkpoints/step_00000002"));
}

// Pruning keeps the newest `keep` including the one just written, which it never removes even
// when older-numbered than the others (a run resumed from an earlier checkpoint into its
// directory).
TEST(Checkpoint, PruningNeverRemovesTheOneJustWritten) {
  const std::string run = ::testing::TempDir() + "minivlm_ckpt_prune";
  fs::remove_all(run);
  for (int64_t s : {10, 20}) save_checkpoint(run, s, small_data(s), 0);
  save_checkpoint(run, 5, small_data(5), 2);
  EXPECT_TRUE(fs::exists(run + "/checkpoints/step_00000005/DONE"));
  EXPECT_TRUE(fs::exists(run + "/checkpoints/step_00000020/DONE"));
  EXPECT_FALSE(fs::exists(run + "/checkpoints/step_00000010"));
  save_checkpoint(run, 6, small_data(6), 1);
  EXPECT_TRUE(fs::exists(run + "/checkpoints/step_00000006/DONE"));
  EXPECT_FALSE(fs::exists(run + "/checkpoints/step_00000020"));
  EXPECT_FALSE(fs::exists(run + "/checkpoints/step_00000005"));
}

// A checkpoint written again at the same step (a run resumed at its last step) replaces the old
// one whole, leaving no temporary directories.
TEST(Checkpoint, SameStepIsReplacedWhole) {
  const std::string run = ::testing::TempDir() + "minivlm_ckpt_same";
  fs::remove_all(run);
  save_checkpoint(run, 4, small_data(4), 3);
  CheckpointData d = small_data(4);
  d.model[1].second = Tensor::full({64}, 9.0);
  save_checkpoint(run, 4, d, 3);
  const LoadedCheckpoint c = load_checkpoint(run + "/checkpoints/step_00000004");
  EXPECT_EQ(SafeTensorsFile::open(c.model_path).get("w").to_float_vector().front(), 9.0f);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(run + "/checkpoints"))
    names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"step_00000004"});
}

void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// What a kill inside a save, a prune or a final/ write leaves is removed (or put back) at the
// start of the next run, and was never taken for a checkpoint.
TEST(Checkpoint, LeftoversOfInterruptedSavesAreCleanedUp) {
  const std::string run = ::testing::TempDir() + "minivlm_ckpt_leftovers";
  fs::remove_all(run);
  save_checkpoint(run, 2, small_data(2), 0);
  save_checkpoint(run, 4, small_data(4), 0);
  const fs::path ck = run + "/checkpoints";
  write_text(ck / ".tmp_step_00000009/DONE", "ok\n");  // a complete-looking temporary
  write_text(ck / ".tmp_step_00000009/model.safetensors", "partial");
  write_text(ck / ".del_step_00000001/model.safetensors", "half deleted");
  fs::rename(ck / "step_00000002", ck / ".old_step_00000002");  // killed between two renames
  fs::copy(ck / "step_00000004", ck / ".old_step_00000004", fs::copy_options::recursive);
  write_text(run + "/.tmp_final/model.safetensors", "partial");
  write_text(run + "/.old_final/config.json", "{}");  // final/ missing: put back
  EXPECT_EQ(*latest_checkpoint(run), run + "/checkpoints/step_00000004");

  const std::vector<std::string> lines = clean_run_leftovers(run);
  std::string all;
  for (const std::string& l : lines) all += l + "\n";
  EXPECT_EQ(lines.size(), 6u) << all;
  EXPECT_THAT(all, HasSubstr("removed " + (ck / ".tmp_step_00000009").string() +
                             ", left by an interrupted save"));
  EXPECT_THAT(all, HasSubstr("removed " + (ck / ".del_step_00000001").string() +
                             ", left by an interrupted prune"));
  EXPECT_THAT(all, HasSubstr("restored " + (ck / "step_00000002").string()));
  EXPECT_THAT(all, HasSubstr("removed " + run +
                             "/.tmp_final, left by an interrupted write of "
                             "final/"));
  EXPECT_THAT(all, HasSubstr("restored " + run + "/final from " + run + "/.old_final"));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(ck)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"step_00000002", "step_00000004"}));
  EXPECT_NO_THROW(load_checkpoint((ck / "step_00000002").string()));
  EXPECT_TRUE(fs::exists(run + "/final/config.json"));
  EXPECT_FALSE(fs::exists(run + "/.tmp_final"));
  EXPECT_FALSE(fs::exists(run + "/.old_final"));
  EXPECT_TRUE(clean_run_leftovers(run).empty());
}

// A directory replaced over and over (as final/ is at the end of each run) and killed at random
// instants: after the start-of-run cleanup there is always one complete version under its name.
TEST(Checkpoint, SigkillDuringDirectoryReplacementLeavesOneCompleteVersion) {
  const std::string run = ::testing::TempDir() + "minivlm_replace_kill";
  fs::remove_all(run);
  fs::create_directories(run);
  const std::string dest = run + "/final";
  const int64_t n = 1 << 20;
  auto write_version = [&](int64_t v) {
    const std::string tmp = final_tmp_dir(run);
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    save_safetensors(tmp + "/model.safetensors",
                     {{"w", Tensor::full({n}, static_cast<double>(v))}});
    write_text(tmp + "/config.json", std::to_string(v));
    fsync_tree(tmp);
    replace_dir_atomic(tmp, dest);
  };
  write_version(0);
  Rng rng(5);
  int interrupted = 0;
  for (int trial = 0; trial < 12; ++trial) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int64_t v = 1;; ++v) write_version(v);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng.below(40000)));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    interrupted += !clean_run_leftovers(run).empty();
    ASSERT_TRUE(fs::exists(dest + "/config.json"));
    const std::string v = slurp(dest + "/config.json");
    const Tensor w = SafeTensorsFile::open(dest + "/model.safetensors").get("w");
    ASSERT_EQ(w.numel(), n);
    EXPECT_EQ(w.to_float_vector().back(), std::stof(v));
    EXPECT_EQ(w.to_float_vector().front(), std::stof(v));
  }
  EXPECT_GT(interrupted, 0) << "no kill landed inside a write";
}
}  // namespace
}  // namespace minivlm
