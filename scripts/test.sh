#!/usr/bin/env bash
# The whole verdict: install what is missing, configure, build, run every test. Exit status = result.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=${MINIVLM_JOBS:-$(nproc)}

./scripts/setup.sh

echo "== configure and build (build/)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMINIVLM_REQUIRE_PARQUET=ON >/dev/null
cmake --build build -j "$jobs"

echo "== tests (build/)"
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 1200

# Sanitizer trees of the emulator and the emulated kernel tests, at small shapes.
if [ -f "$root/kernels/CMakeLists.txt" ]; then
  for san in thread address; do
    dir=build-$san
    echo "== $san-sanitizer build of the emulated kernel tests ($dir/)"
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMINIVLM_SANITIZE=$san \
      -DMINIVLM_KERNEL_TESTS_ONLY=ON -DMINIVLM_CUDA=OFF >/dev/null
    cmake --build "$dir" -j "$jobs"
    MINIVLM_SMALL_SHAPES=1 ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 1200
  done
fi
# The file parsers under libFuzzer (clang, ASan + UBSan), a bounded time each.
./scripts/fuzz.sh
echo "== all tests passed"
