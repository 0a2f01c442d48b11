#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz/), replays every saved input of each target
# (fuzz/corpus/<target>/ and fuzz/regressions/<target>/), then fuzzes each target for a bounded
# time: SHMBUS_FUZZ_SECONDS (default 30) per target, two targets at a time. Fails on any crash,
# hang, leak or sanitizer report; the input that caused it is left in build-fuzz/findings/<target>/
# (keep it in fuzz/regressions/<target>/ once the bug is fixed). docs/fuzzing.md says more.
# SHMBUS_FUZZ_TARGETS (default: all five) names the targets to build and run.
# Needs the packages of scripts/setup.sh plus clang-14 and libclang-rt-14-dev.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${SHMBUS_FUZZ_SECONDS:-30}
build=${SHMBUS_FUZZ_BUILD:-build-fuzz}
read -ra targets <<<"${SHMBUS_FUZZ_TARGETS:-ring control journal cli dead_letter}"
programs=()
for target in "${targets[@]}"; do programs+=("${target}_fuzzer"); done
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

echo "== build $build (clang, libFuzzer + ASan + UBSan)"
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHMBUS_FUZZ=ON \
  -DBUILD_TESTING=OFF "${launcher[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${programs[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# One target: the saved inputs once, then fuzzing from a scratch copy of its corpus (new inputs
# found go there, not into the checked-in seeds).
fuzz_target() {  # TARGET
  local target=$1 program="$build/bin/$1_fuzzer"
  local work="$build/fuzz-work/$target" findings="$build/findings/$target"
  rm -rf "$work" && mkdir -p "$work" "$findings" "fuzz/regressions/$target"
  local log="$build/fuzz-$target.log"
  {
    echo "== $target: replaying fuzz/corpus/$target and fuzz/regressions/$target"
    "$program" -runs=0 "fuzz/corpus/$target" "fuzz/regressions/$target"
    echo "== $target: fuzzing for ${seconds}s"
    "$program" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$findings/" -print_final_stats=1 "$work" "fuzz/corpus/$target"
  } >"$log" 2>&1
}

failed=()
running=()
for target in "${targets[@]}"; do
  fuzz_target "$target" &
  running+=("$!:$target")
  if ((${#running[@]} == 2)); then
    for job in "${running[@]}"; do
      wait "${job%%:*}" || failed+=("${job#*:}")
    done
    running=()
  fi
done
for job in "${running[@]}"; do
  wait "${job%%:*}" || failed+=("${job#*:}")
done

for target in "${targets[@]}"; do
  grep -E "^(stat::number_of_executed_units|stat::new_units_added)" "$build/fuzz-$target.log" |
    tr '\n' ' ' | sed "s/^/   $target: /"
  echo
done
if ((${#failed[@]})); then
  for target in "${failed[@]}"; do
    echo "== $target FAILED: $build/fuzz-$target.log; inputs in $build/findings/$target/"
    tail -n 40 "$build/fuzz-$target.log"
  done
  exit 1
fi
echo "== fuzzing passed: ${targets[*]} (${seconds}s each)"
