#!/usr/bin/env bash
# Runs the C examples together: c_tail follows a fresh channel while c_publish publishes COUNT
# quotes; both must exit 0 (c_tail checks every quote by number and content).
# Usage: run.sh BIN_DIR COUNT
set -euo pipefail
bin=$1
count=$2
channel=example.c.$$
"$bin/c_tail" "$channel" "$count" &
tail_pid=$!
"$bin/c_publish" "$channel" "$count"
wait "$tail_pid"
rm -f "/dev/shm/shmbus.$channel" "/dev/shm/shmbus.$channel".ctl.*
