#!/usr/bin/env bash
# The main job: install, build, and run a live channel with a publisher, the journaler and block,
# drop and spill subscribers, printing their stats as they run and checking every message; then
# the transport's own round trip between two pinned processes, beside raw shared memory.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
shmbus_install_packages
shmbus_build build
exec build/bin/shmbus demo "$@"
