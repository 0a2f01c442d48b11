#!/usr/bin/env bash
# Installs what shmbus needs from Debian 12's packages (only what is missing) and builds one
# configuration. Sourced by demo.sh and test.sh; usable alone: scripts/setup.sh [build-dir] [sanitizer]
set -euo pipefail

SHMBUS_PACKAGES=(g++ cmake make pkg-config libboost-dev liburing-dev libgtest-dev libgmock-dev
  libbenchmark-dev libcli11-dev libfmt-dev nlohmann-json3-dev libexpected-dev spin
  libfaketime clang libclang-rt-14-dev libhowardhinnant-date-dev help2man doxygen
  python3-matplotlib python3-pybind11 pybind11-dev python3-dev python3-numpy python3-pytest
  python3-venv python3-pip python3-setuptools python3-wheel libnats-dev nats-server)

shmbus_install_packages() {
  local missing=()
  for p in "${SHMBUS_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "== installing: ${missing[*]}"
    local sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

# shmbus_build DIR [address|thread] [more cmake -D options]
# Builds everything, or only the targets named in SHMBUS_BUILD_TARGETS.
shmbus_build() {
  local dir=$1 sanitize=${2:-}
  shift $(($# < 2 ? $# : 2))
  local type=Release
  local python=ON  # the Python module and its tests (python/, tests/python/): plain builds only
  [[ -n $sanitize ]] && type=RelWithDebInfo && python=OFF
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DSHMBUS_SANITIZE="$sanitize" \
    -DSHMBUS_PYTHON="$python" "$@" >/dev/null
  local targets=()
  [[ -n ${SHMBUS_BUILD_TARGETS:-} ]] && targets=(--target $SHMBUS_BUILD_TARGETS)
  cmake --build "$dir" -j"$(nproc)" "${targets[@]}"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  cd "$(dirname "$0")/.."
  shmbus_install_packages
  shmbus_build "${1:-build}" "${2:-}"
fi
