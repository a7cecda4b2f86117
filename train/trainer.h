// The Trainer shared by train_pretrain and train_sft: freezing policy, data-parallel steps with the
// global-token-mean loss (SPEC §4.2), AdamW with warmup + cosine, clipping, non-finite step
// skipping, progress, metrics.jsonl, periodic held-out evaluation, checkpoints and exact resume.
#pragma once
#include <string>
#include <vector>

#include "train/options.h"

namespace minivlm {

// The whole body of a training binary; returns the process exit code.
int train_main(Stage stage, int argc, char** argv);

}  // namespace minivlm
