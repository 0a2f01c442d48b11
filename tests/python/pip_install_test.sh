#!/usr/bin/env bash
# pip_install_test.sh SOURCE_DIR BUILD_DIR PYTHON: installs the package as docs/python.md says,
# into a virtual environment in a temporary directory, and uses it from outside the source tree.
set -euo pipefail
src=$1 build=$2 python=$3
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null || ! "$python" -m pip --version >/dev/null 2>&1; then
  echo "SKIP: python3-venv or python3-pip is not installed (scripts/setup.sh installs them)"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m venv --system-site-packages "$work/venv"
export SHMBUS_PYTHON_BUILD_DIR="$work/pip-build"  # nothing lands in the source tree
if [[ ${SHMBUS_PIP_FROM_SCRATCH:-0} != 1 ]]; then
  export SHMBUS_CMAKE_BUILD_DIR=$build
fi
(cd "$src" && "$work/venv/bin/pip" install --no-build-isolation --no-cache-dir --quiet .)
channel="pipinstall.$$"
cd "$work"
"$work/venv/bin/python" - "$channel" <<'PY' && status=0 || status=$?
import sys
import shmbus
assert shmbus.__file__.startswith(sys.prefix), shmbus.__file__  # the venv's copy, not the build's
channel = sys.argv[1]
pub = shmbus.Publisher(channel, capacity=1 << 16, max_message=256)
sub = shmbus.Subscriber(channel, start="earliest")
seq = pub.publish(b"installed", key="k", message_type=7)
(m,) = sub.poll(timeout=5.0)
assert (m.sequence, m.bytes(), m.key, m.message_type) == (seq, b"installed", b"k", 7), m
print(f"installed module {shmbus.__file__} published and read sequence {seq}")
PY
"$build/bin/shmbus" rm "$channel" >/dev/null
exit $status
