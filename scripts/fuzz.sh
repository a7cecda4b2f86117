#!/usr/bin/env bash
# Builds the libFuzzer targets of the file parsers (fuzz/, in build-fuzz/ with clang, ASan and
# UBSan) and runs each for a bounded time from its seed corpus (fuzz/corpus/<target>/). A crash, a
# sanitizer report, an exception other than minivlm::Error, a hang past -timeout or memory past
# -rss_limit_mb fails the script; the input is left in build-fuzz/artifacts/<target>/.
#   scripts/fuzz.sh                  every target, MINIVLM_FUZZ_SECONDS (default 15) seconds each
#   scripts/fuzz.sh 300 tokenizer    one target for 5 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${1:-${MINIVLM_FUZZ_SECONDS:-15}}
[ $# -gt 0 ] && shift
jobs=${MINIVLM_JOBS:-$(nproc)}
dir=$root/build-fuzz

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.cpp; do
    n=$(basename "$f" .cpp)
    targets+=("${n#fuzz_}")
  done
fi

echo "== fuzz targets (build-fuzz/): ${targets[*]}"
CC=${MINIVLM_FUZZ_CC:-clang-14} CXX=${MINIVLM_FUZZ_CXX:-clang++-14} \
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMINIVLM_FUZZ=ON >/dev/null
cmake --build "$dir" -j "$jobs" --target "${targets[@]/#/fuzz_}"

failed=()
for t in "${targets[@]}"; do
  work=$dir/corpus/$t        # what this run finds; the committed seeds stay as they are
  art=$dir/artifacts/$t/
  mkdir -p "$work" "$art"
  log=$dir/fuzz_$t.log
  echo "-- fuzz_$t: ${secs}s"
  if ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0} \
     "$dir/bin/fuzz_$t" "$work" "fuzz/corpus/$t" -max_total_time="$secs" -rss_limit_mb=2048 \
     -timeout=10 -max_len=65536 -artifact_prefix="$art" -print_final_stats=1 >"$log" 2>&1; then
    grep -E "^stat::number_of_executed_units" "$log" | sed "s/^/   /" || true
  else
    echo "   FAILED (log: $log, input in $art)"
    tail -n 40 "$log"
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "== fuzzing found failures in: ${failed[*]}"
  exit 1
fi
echo "== fuzzing passed"
