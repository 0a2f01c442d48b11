#!/usr/bin/env bash
# The main job: install, build, and run a live channel with a publisher, a block and a drop
# subscriber, printing their stats as they run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
shmbus_install_packages
shmbus_build build
exec build/bin/shmbus demo "$@"
