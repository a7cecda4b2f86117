// Checkpoints (SPEC §6): RUN/checkpoints/step_NNNNNNNN/{model.safetensors, optimizer.safetensors,
// trainer_state.json, DONE}. Written into a hidden temporary directory, synced, renamed into place,
// and DONE is written last: a kill at any instant leaves every earlier checkpoint intact, and a
// directory without DONE is never loaded.
#pragma once
#include <nlohmann/json.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace minivlm {

struct CheckpointData {
  std::vector<std::pair<std::string, Tensor>> model;      // every model tensor
  std::vector<std::pair<std::string, Tensor>> optimizer;  // AdamW moments
  nlohmann::json state;                                   // trainer state
  // Files copied into the directory beside the weights (a Hugging Face source's config, tokenizer
  // and processor files, so that the checkpoint is itself a model directory of its layout).
  std::vector<std::string> files;
};

std::string checkpoint_name(int64_t step);  // "step_00000100"
// Writes RUN/checkpoints/<name>/ atomically, then removes all but the newest `keep` complete ones.
std::string save_checkpoint(const std::string& run_dir, int64_t step, const CheckpointData& data,
                            int64_t keep);
// The newest checkpoint directory with DONE, if any.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);
// Reads a checkpoint directory; throws naming the directory if DONE or a file is missing.
struct LoadedCheckpoint {
  std::string dir;
  std::string model_path;
  std::map<std::string, Tensor> optimizer;
  nlohmann::json state;
};
LoadedCheckpoint load_checkpoint(const std::string& dir);

// (load_checkpoint reads trainer_state.json as a regular file of limited size and nesting and
// requires a JSON object; whether it holds what resuming reads is check_trainer_state's to say.)

// Saved world sizes above this are refused when a trainer state is checked.
inline constexpr int64_t kMaxTrainerWorldSize = int64_t{1} << 20;
// Checks that a trainer state holds what resuming reads: non-negative integer step,
// optimizer_steps, nonfinite_steps and tokens, global_batch >= 1, world_size in
// [1, kMaxTrainerWorldSize], and world_size "ranks" entries, each a loader state
// (LoaderState::from_json) and an "rng" string, with step_in_epoch × global_batch within int64.
// Throws minivlm::Error naming `origin` and the key.
void check_trainer_state(const nlohmann::json& state, const std::string& origin);
// trainer_state.json's text parsed (core/json_file.h) and checked (check_trainer_state).
nlohmann::json parse_trainer_state(std::string_view text, const std::string& origin);

}  // namespace minivlm
