#!/usr/bin/env bash
# Records a market-data session (examples/market_data/run.sh, keeping its journal), then replays it
# into the market-data strategy with replay_session, and checks that the strategy sees the session
# it saw live: every quote, byte for byte, in order, and the very same orders.
#   1. at 10x the recorded pace;
#   2. at max speed (as fast as the strategy, a block subscriber, takes the quotes);
#   3. from a sequence (JournalReader::seek_sequence): the strategy's first quote is that record's;
#   4. from that record's time (seek_time): the replay starts on the same record.
#
# Usage: run.sh BUILD_DIR [--quotes N] [--rate PER_SECOND]
#   BUILD_DIR   where replay_session and the md_* programs were built
set -euo pipefail

usage() { sed -n '10,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -ge 1 ]] || usage
build=$1
shift
quotes=3000
rate=5000
while [[ $# -gt 0 ]]; do
  case $1 in
    --quotes) quotes=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    *) usage ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../common/run_support.sh
source "$here/../common/run_support.sh"
bin=$(programs_in "$build" replay_session)

work=$(mktemp -d)
channels=()
cleanup() {
  remove_channels "$build" "${channels[@]}"
  rm -rf "$work"
}
trap cleanup EXIT

echo "== recording a live session of $quotes quotes at $rate/s"
"$here/../market_data/run.sh" "$build" --quotes "$quotes" --rate "$rate" \
  --journal "$work/session" >"$work/live.out"
grep -E '^(feed handler|strategy|recorder):' "$work/live.out"

# replay_into NAME SPEED [replay_session options...]: replays the session into a strategy of its
# own (on channels rp.<pid>.NAME.*), which sends its orders to nobody.
replay_into() {
  local name=$1 speed=$2
  shift 2
  local channel=rp.$$.$name
  channels+=("$channel.quotes" "$channel.orders")
  "$bin/md_strategy" --quotes "$channel.quotes" --orders "$channel.orders" \
    --order-subscribers 0 >"$work/$name.strategy" &
  local strategy=$!
  "$bin/replay_session" --journal "$work/session" --channel "$channel.quotes" --speed "$speed" \
    "$@" >"$work/$name.replay"
  wait "$strategy"
  echo "== replay $name (--speed $speed${*:+ $*})"
  cat "$work/$name.replay" "$work/$name.strategy"
}
replay_into tenfold 10
replay_into max max
# The live channel was new, so its sequence s carries quote s - 1: from sequence 1001 on, the
# strategy's first quote is quote 1000.
from_sequence=$((quotes / 3 + 1))
replay_into from-sequence max --from-sequence "$from_sequence"
from_time=$(sed -n 's/^replay: first record: sequence [0-9]*, recorded at \([0-9]*\) ns$/\1/p' \
  "$work/from-sequence.replay")
replay_into from-time max --from-time-ns "$from_time"
echo

# The strategy's view of a run: "<quotes> (ids <first>..<last>), in order: <yes|no>" and digests.
quote_view() { sed -n 's/^strategy: \([0-9]* quotes (ids [0-9.]*), in order: [a-z]*\),.*/\1/p' "$1"; }
digests() { grep -o '[a-z]* digest [0-9a-f]*' "$1" | tr '\n' ' '; }
live_digests=$(digests "$work/live.out")
for name in tenfold max; do
  check "$name: the strategy saw every quote, in order" "$(quote_view "$work/$name.strategy")" \
    "$quotes quotes (ids 0..$((quotes - 1))), in order: yes"
  check "$name: the same quotes, byte for byte, and the same orders as live" \
    "$(digests "$work/$name.strategy")" "$live_digests"
done
check "from sequence $from_sequence: the strategy's quotes start at that record" \
  "$(quote_view "$work/from-sequence.strategy")" \
  "$((quotes - from_sequence + 1)) quotes (ids $((from_sequence - 1))..$((quotes - 1))), in order: yes"
check "from its time: the replay starts on the same record" \
  "$(sed -n 's/^replay: first record: sequence \([0-9]*\),.*/\1/p' "$work/from-time.replay")" \
  "$from_sequence"
tenfold=$(sed -n 's/^replay: speed 10: .*(\([0-9.]*\)x).*/\1/p' "$work/tenfold.replay")
# On shared cores a late wake-up can only slow a replay down, never speed it up.
check "10x: no faster than 10x" "$(awk -v x="$tenfold" 'BEGIN { print (x <= 10.05) ? "yes" : "no" }')" "yes"
[[ $failed == 0 ]] && echo "all checks passed"
exit "$failed"
