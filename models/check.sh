#!/usr/bin/env bash
# Checks models/ring.pml with spin: every configuration below must verify with no error, and every
# deliberately broken variant must be caught (so the assertions are known to bite).
#   models/check.sh            the configurations the test suite runs (about 15 s)
#   SHMBUS_MODEL_DEEP=1 ...    also two messages per producer on a two-frame ring (a long search)
set -euo pipefail
command -v spin >/dev/null || { echo "spin is not installed (scripts/setup.sh installs the Debian package)"; exit 1; }
model=$(cd "$(dirname "$0")" && pwd)/ring.pml
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# run NAME EXPECT(pass|fail) spin-defines...
run() {
  local name=$1 expect=$2
  shift 2
  spin "$@" -a "$model" >/dev/null
  cc -O2 -DSAFETY -DCOLLAPSE -w -o pan pan.c
  local out errors
  out=$(./pan -m200000 2>&1 || true)
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' <<<"$out")
  if [[ -z $errors ]]; then
    echo "model $name: spin gave no verdict"; echo "$out"; exit 1
  fi
  local states
  states=$(sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p' <<<"$out")
  if [[ $expect == pass && $errors != 0 ]]; then
    echo "model $name: FAILED"; echo "$out"
    spin -t -p -g "$model" 2>&1 | tail -60 || true
    exit 1
  fi
  if [[ $expect == fail && $errors == 0 ]]; then
    echo "model $name: the broken variant verified; the assertions do not bite"; exit 1
  fi
  echo "model $name: $expect as expected (errors: $errors, states: ${states:-?})"
}

run "one-frame ring, one message per producer" pass -DN=1 -DMSGS=1
run "two-frame ring, one message per producer" pass -DN=2 -DMSGS=1
run "commit without the timing assumption" fail -DN=2 -DMSGS=1 -DWITHOUT_COMMIT_ASSUMPTION
run "drop reader without the lap check" fail -DN=1 -DMSGS=1 -DWITHOUT_LAP_CHECK
run "producers without the in-flight bound" fail -DN=1 -DMSGS=1 -DWITHOUT_IN_FLIGHT_BOUND
if [[ ${SHMBUS_MODEL_DEEP:-0} == 1 ]]; then
  run "two-frame ring, two messages per producer" pass -DN=2 -DMSGS=2
fi
