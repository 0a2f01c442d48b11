# Sourced by the examples' run.sh scripts.

# programs_in BUILD PROGRAM: the directory of the example programs, BUILD/bin (the shmbus tree's
# build) or BUILD (an example built on its own); exits 2 if PROGRAM is in neither.
programs_in() {
  local dir
  for dir in "$1/bin" "$1"; do
    if [[ -x $dir/$2 ]]; then echo "$dir"; return; fi
  done
  echo "no $2 in $1/bin or $1" >&2
  exit 2
}

# remove_channels BUILD CHANNEL...: removes the channels with the `shmbus` command (from the build,
# else from PATH). Channels live in /dev/shm until removed; the programs leave them (so that a
# restarted process could resume).
remove_channels() {
  local shmbus=$1/bin/shmbus channel
  shift
  [[ -x $shmbus ]] || shmbus=$(command -v shmbus) || return 0
  for channel in "$@"; do "$shmbus" rm --force "$channel" >/dev/null 2>&1 || true; done
}

# check DESCRIPTION GOT EXPECTED: prints the outcome; a failure sets failed=1.
failed=0
check() {
  if [[ $2 == "$3" ]]; then
    echo "ok:   $1"
  else
    echo "FAIL: $1 (got '$2', expected '$3')"
    failed=1
  fi
}
