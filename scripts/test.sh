#!/usr/bin/env bash
# The whole test suite: install, then build and test three ways:
#  1. Release: the tests whose subject is speed, scale or what instrumentation hides (the soak,
#     kill -9 and fault programs, the million-record group proofs, the hot-path proofs, the
#     concurrency programs, the benchmarks' tests: SHMBUS_TESTS=full-speed, tests/CMakeLists.txt),
#     the Python bindings, the C programs, the examples, the installed package and the model.
#  2. ThreadSanitizer: the in-process concurrency tests (*_threads_test).
#  3. AddressSanitizer + UndefinedBehaviorSanitizer: every test but those of `shmbus bench` and
#     `shmbus demo`, which are built without the bench/ harness there (SHMBUS_BENCH=OFF): timings
#     under a sanitizer mean nothing, and the harness was a seventh of this build's compile time.
#     The Release build runs those tests (SHMBUS_BENCH_TESTS, tests/CMakeLists.txt).
# Then the fuzzers (scripts/fuzz.sh): clang + libFuzzer, every saved input, then a bounded run.
# The Release run includes the soak (random kill -9s of every kind of process) for
# SHMBUS_SOAK_SECONDS (40 unless set), and the spin model of the ring (models/check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
shmbus_install_packages

# Each phase prints the seconds since the start: the whole command must stay inside 25 minutes
# on 2 cores, and this is where to see what a change cost.
phase() { echo "== [$SECONDS s] $*"; }

run_suite() {  # DIR [sanitizer] [more cmake -D options]
  phase "build $1 ${2:+(sanitize=$2)}"
  shmbus_build "$@"
  phase "test $1"
  ctest --test-dir "$1" --output-on-failure --timeout 900 -j2
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
SHMBUS_SOAK_SECONDS=${SHMBUS_SOAK_SECONDS:-40} run_suite build "" -DSHMBUS_TESTS=full-speed
run_suite build-tsan thread
# Under the sanitizers the group proofs and the bridge tests run on fewer records (the Release run
# does 1,000,000), and the journaler is killed 8 times instead of 20
# (tests/ipc/journaler_crash_test.cpp: 46 s for 20).
SHMBUS_GROUP_RECORDS=${SHMBUS_GROUP_RECORDS:-200000} SHMBUS_KEYED_RECORDS=${SHMBUS_KEYED_RECORDS:-100000} \
  SHMBUS_BRIDGE_RECORDS=${SHMBUS_BRIDGE_RECORDS:-20000} \
  SHMBUS_JOURNALER_KILLS=${SHMBUS_JOURNALER_KILLS:-8} run_suite build-asan address -DSHMBUS_BENCH=OFF
# The four targets over what other processes and disks write; the command-line target (whose
# build is the command's whole library again) runs in long runs only: its saved inputs are
# replayed under ASan+UBSan above (FuzzRegressions.Cli*).
phase "fuzz"
SHMBUS_FUZZ_SECONDS=${SHMBUS_FUZZ_SECONDS:-6} \
  SHMBUS_FUZZ_TARGETS=${SHMBUS_FUZZ_TARGETS:-ring control journal dead_letter} bash scripts/fuzz.sh
phase "all suites passed"
