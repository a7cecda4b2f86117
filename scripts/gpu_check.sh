#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds the CUDA back-end and runs the device tests on the real
# GPU (the op table and the device runtime tests run on every registered back-end, cuda among them
# there; the model tests run on MINIVLM_TEST_DEVICE=cuda instead of cuda-emu).
# Debian packages the machine lacks can be given as .deb files in $MINIVLM_DEBS (unpacked into /).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${MINIVLM_DEBS:-}" ]; then
  for f in "$MINIVLM_DEBS"/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
cmake -S . -B build-gpu -G Ninja -DMINIVLM_CUDA=ON -DMINIVLM_MPI=OFF -DCMAKE_BUILD_TYPE=Release ${MINIVLM_CMAKE_ARGS:-} >/dev/null
cmake --build build-gpu -j "$(nproc)" --target minivlm test_op_table test_device_runtime \
  test_cuda_emu_model test_cuda_emu_minimind3v
build-gpu/bin/minivlm info
export MINIVLM_TEST_DEVICE=cuda
build-gpu/tests/test_op_table
build-gpu/tests/test_device_runtime
build-gpu/tests/test_cuda_emu_model
build-gpu/tests/test_cuda_emu_minimind3v
