#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds the CUDA back-end and runs the device tests on the real
# GPU (the ops and model tests that otherwise run on cuda-emu, with MINIVLM_TEST_DEVICE=cuda).
# Debian packages the machine lacks can be given as .deb files in $MINIVLM_DEBS (unpacked into /).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${MINIVLM_DEBS:-}" ]; then
  for f in "$MINIVLM_DEBS"/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
cmake -S . -B build-gpu -G Ninja -DMINIVLM_CUDA=ON -DMINIVLM_MPI=OFF -DCMAKE_BUILD_TYPE=Release ${MINIVLM_CMAKE_ARGS:-} >/dev/null
cmake --build build-gpu -j "$(nproc)" --target minivlm test_cuda_emu_ops test_cuda_emu_model
build-gpu/bin/minivlm info
export MINIVLM_TEST_DEVICE=cuda
build-gpu/tests/test_cuda_emu_ops
build-gpu/tests/test_cuda_emu_model
