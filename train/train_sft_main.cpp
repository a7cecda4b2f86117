// train_sft: trains the projector and the whole LLM on conversations.
#include "core/process_env.h"
#include "train/trainer.h"

int main(int argc, char** argv) {
  minivlm::ensure_passive_openmp_wait(argv);
  return minivlm::train_main(minivlm::Stage::sft, argc, argv);
}
