// Checkpoints (SPEC §6): RUN/checkpoints/step_NNNNNNNN/{model.safetensors, optimizer.safetensors,
// trainer_state.json, DONE}.
//
// Never a bad one. Before anything is written every model and optimizer tensor is checked: a
// non-finite value anywhere, or a weight beyond ±kExplodedWeight, refuses the save with an error
// naming the tensors, and nothing on disk changes.
//
// Never a partial one. The checkpoint is written into checkpoints/.tmp_step_NNNNNNNN/ (DONE
// last), synced, read back (both safetensors headers and sizes, the state's JSON), and only then
// published under its name by one rename (an existing directory of the same step is exchanged
// with it, io/atomic_file.h). A directory without DONE is never loaded.
//
// Never losing good ones. Pruning to the newest `keep` complete checkpoints runs only after the
// new one is published, never removes the one just written, and renames each doomed directory to
// checkpoints/.del_step_NNNNNNNN/ before deleting it, so a kill while deleting never leaves a
// directory that still looks complete. clean_run_leftovers removes what a kill left behind.
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

// A model weight whose magnitude exceeds this is "exploded": no trained weight comes near it, and
// fp32 overflows soon after (3.4e38). Optimizer moments are only required to be finite (the second
// moment holds squared gradients and is legitimately large without clipping).
inline constexpr double kExplodedWeight = 1e30;

// Throws minivlm::Error when a model tensor holds a non-finite value or one beyond
// ±kExplodedWeight, or an optimizer tensor a non-finite value; the message names every such
// tensor (up to 8) with its count and first bad value, and `what` (e.g. "checkpoint
// step_00000100").
void check_savable(const CheckpointData& data, const std::string& what);

std::string checkpoint_name(int64_t step);  // "step_00000100"
// Checks the data (check_savable), writes RUN/checkpoints/<name>/ atomically and verified, then
// removes all but the newest `keep` complete ones (keep ≤ 0: none), never the one just written.
// Throws before touching the disk when the data is not savable.
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

// Where the trainer builds RUN/final before publishing it with replace_dir_atomic.
std::string final_tmp_dir(const std::string& run_dir);
// Removes the leftovers of a save, a prune or a final/ write that a kill interrupted:
// checkpoints/.tmp_*, checkpoints/.del_*, RUN/.tmp_final; a directory renamed aside while being
// replaced (.old_*) is put back when its replacement is missing, else removed. Call it only while
// holding the run's lock (train/run_lock.h). Returns one line per thing done.
std::vector<std::string> clean_run_leftovers(const std::string& run_dir);

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
