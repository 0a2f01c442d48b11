#!/usr/bin/env bash
# run.sh BUILD_DIR PYTHON: runs both Python examples on the module of BUILD_DIR, briefly.
#  1. quote_monitor.py --demo: a generator process and the monitor, every quote checked.
#  2. journal_interarrival.py on a small journal recorded by `shmbus record` for the occasion;
#     the PNG must exist and hold a picture.
set -euo pipefail
build=$1 python=$2
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH=$build/python PYTHONDONTWRITEBYTECODE=1
shmbus=$build/bin/shmbus
work=$(mktemp -d)
quotes="pyexample.quotes.$$" ticks="pyexample.ticks.$$"
cleanup() {
  [[ -n ${recorder:-} ]] && kill "$recorder" 2>/dev/null || true
  "$shmbus" rm "$quotes" >/dev/null 2>&1 || true
  "$shmbus" rm "$ticks" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$python" "$here/quote_monitor.py" "$quotes" --demo 3000 --rate 20000 --every 1000

"$python" -c "import shmbus,sys; shmbus.Publisher(sys.argv[1]).close()" "$ticks"  # creates it
"$shmbus" record "$ticks" --dir "$work/journal" 2>"$work/record.log" &
recorder=$!
for _ in $(seq 100); do grep -q "recording channel" "$work/record.log" && break; sleep 0.05; done
"$shmbus" pub "$ticks" --count 2000 --size 64 --rate 20000 >/dev/null
for _ in $(seq 200); do
  written=$("$python" -c "import shmbus,sys; print(shmbus.stat(sys.argv[1])['journal']['written_sequence'])" "$ticks")
  [[ $written -ge 2000 ]] && break
  sleep 0.05
done
kill -INT "$recorder"
wait "$recorder"
recorder=
"$python" "$here/journal_interarrival.py" "$work/journal" --out "$work/interarrival.png"
"$python" - "$work/interarrival.png" <<'PY'
import sys
with open(sys.argv[1], "rb") as f:
    data = f.read()
assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, f"{sys.argv[1]}: not a plot"
print(f"OK: {sys.argv[1]} is a PNG of {len(data)} bytes")
PY
