#!/usr/bin/env bash
# The main job: install, build, and run a live channel with a publisher, the journaler and block,
# drop and spill subscribers, printing their stats as they run and checking every message; then
# the transport's own round trip between two pinned processes, beside raw shared memory.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
shmbus_install_packages
SHMBUS_BUILD_TARGETS=shmbus_cli shmbus_build build  # the demo is the command alone
exec build/bin/shmbus demo "$@"
