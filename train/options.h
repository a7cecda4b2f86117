// Training options (SPEC §6): built-in stage defaults ← a JSON config file ← --key value flags.
// Every option has a type fixed by its default; an unknown option is an error listing the valid
// ones; --max-steps and --max_steps are the same flag.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace minivlm {

enum class Stage { pretrain, sft };

struct TrainOptions {
  // where things are
  std::string model, data, images, out, eval, eval_images, resume, config;
  // schedule
  int64_t epochs = 1, max_steps = 0, batch_size = 8, grad_accum = 1, warmup_steps = 0;
  double lr = 4e-4, min_lr_ratio = 0.1, weight_decay = 0.01, grad_clip = 1.0;
  int64_t max_seq_len = 640, seed = 42;
  std::string device = "auto", dtype = "fp32", train = "projector";
  // bookkeeping
  int64_t log_every = 10, save_every = 0, keep_checkpoints = 3, eval_every = 0, num_workers = 2;
  double max_bad_fraction = 0.01;
  int64_t max_nonfinite_steps = 5, eval_batch_size = 8;
  // speed
  int64_t vision_cache_mb = 0;  // memory for cached frozen-tower features (0: recompute every step)
  // data (SPEC §4.2, §4.4; SampleFormat in data/dataset.h)
  std::string over_long = "skip";          // skip | truncate: a sample longer than max_seq_len
  int64_t allow_images_outside = 0;        // 1: read image paths that leave --images
  double system_prompt_prob = 0.0;         // MiniMind-V: 0.2
  double keep_empty_think = 1.0;           // MiniMind-V: 0.2
  int64_t ignore_unreferenced_images = 0;  // 1: images of a text without <image> are not read
  // 1: several samples per row of a micro-batch, up to max_seq_len tokens (SPEC §4.2; --pack)
  int64_t pack = 0;

  nlohmann::json to_json() const;
};

struct SampleFormat;

// Sets the data options of `opts` on `format`: the over-long policy, the images-directory rule and
// the placeholder-image convention, and with `augment` also MiniMind-V's random system prompt and
// empty think block, seeded with opts.seed (augment is for the training set, not evaluation).
void set_data_options(const TrainOptions& opts, bool augment, SampleFormat& format);

// The stage's defaults (equal to configs/pretrain.json or configs/sft.json).
TrainOptions default_options(Stage stage);
// Parses argv (after the program name). Throws minivlm::Error on unknown options or bad values.
TrainOptions parse_train_options(Stage stage, const std::vector<std::string>& argv);
// Applies a JSON object of options onto `opts` (same validation as flags); `origin` names the
// source.
void apply_options(TrainOptions& opts, const nlohmann::json& j, const std::string& origin);

}  // namespace minivlm
