// A save killed with SIGKILL at any moment leaves every earlier checkpoint loadable.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "core/rng.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"

namespace minivlm {
namespace {

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

}  // namespace
}  // namespace minivlm
