// train_pretrain: trains the projector (optionally + the last LLM layer) on captioning data.
#include "core/process_env.h"
#include "train/trainer.h"

int main(int argc, char** argv) {
  minivlm::ensure_passive_openmp_wait(argv);
  return minivlm::train_main(minivlm::Stage::pretrain, argc, argv);
}
