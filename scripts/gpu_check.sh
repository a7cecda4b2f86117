#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds the CUDA back-end, then prints ONE table
# (scripts/bench/gpu_day_one.py): the device tests on the real GPU (the op table and the device
# runtime tests run on every registered back-end, cuda among them there; the model tests run on
# MINIVLM_TEST_DEVICE=cuda instead of cuda-emu) as pass/fail counts, cpu vs cuda losses of 5
# training steps of a tiny model, bf16 training tokens/s and model FLOP utilisation and bf16 decode
# tokens/s of minimind2-small-v and minimind3-v beside the GPU cost model's prediction for the same
# workloads (bench-model --predict, docs/performance.md), and the same workloads in PyTorch eager
# bf16 on the GPU where `python3` (or $MINIVLM_PYTHON) imports torch with CUDA. Sized for one H100/H200 in
# under 8 minutes, the build included.
#
#   scripts/gpu_check.sh [--dry-run]    --dry-run: print the commands and the table's skeleton, run nothing
#
# Debian packages the machine lacks can be given as .deb files in $MINIVLM_DEBS (unpacked into /).
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; elif [ $# -gt 0 ]; then
  echo "usage: scripts/gpu_check.sh [--dry-run]" >&2
  exit 2
fi
PY=${MINIVLM_PYTHON:-python3}
run() {  # echo under --dry-run, else run
  if [ $DRY = 1 ]; then echo "  \$ $*"; else "$@"; fi
}
if [ $DRY = 1 ]; then echo "commands (dry run):"; fi
if [ -n "${MINIVLM_DEBS:-}" ]; then
  for f in "$MINIVLM_DEBS"/*.deb; do run dpkg -x "$f" /; done
  run ldconfig
fi
run nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
if [ $DRY = 1 ]; then
  echo "  \$ cmake -S . -B build-gpu -G Ninja -DMINIVLM_CUDA=ON -DMINIVLM_MPI=OFF -DCMAKE_BUILD_TYPE=Release ${MINIVLM_CMAKE_ARGS:-} >/dev/null"
else
  cmake -S . -B build-gpu -G Ninja -DMINIVLM_CUDA=ON -DMINIVLM_MPI=OFF -DCMAKE_BUILD_TYPE=Release ${MINIVLM_CMAKE_ARGS:-} >/dev/null
fi
run cmake --build build-gpu -j "$(nproc)" --target minivlm test_op_table test_device_runtime \
  test_cuda_emu_model test_cuda_emu_minimind3v
run build-gpu/bin/minivlm info
DRYARG=()
if [ $DRY = 1 ]; then DRYARG=(--dry-run); fi
exec "$PY" scripts/bench/gpu_day_one.py --bin build-gpu/bin/minivlm --tests build-gpu/tests \
  --python "$PY" "${DRYARG[@]}"
