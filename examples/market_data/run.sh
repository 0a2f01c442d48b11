#!/usr/bin/env bash
# Runs the market-data pipeline: recorder, order gateway, risk monitor, strategy and feed handler,
# each a process of its own, on two fresh channels (<prefix>.quotes, <prefix>.orders). The feed
# publishes --quotes quotes at --rate per second and ends the session; the strategy and the gateway
# stop at its end; then the risk monitor and the recorder are stopped with SIGTERM. Prints what
# each process saw, the end-to-end latency, and checks the results (exit 1 if one fails).
#
# Usage: run.sh BUILD_DIR [--quotes N] [--rate PER_SECOND] [--journal DIR]
#   BUILD_DIR   where md_* were built (the shmbus build directory, or this example's own)
#   --journal   keep the recorded journal in DIR (a new or empty directory); default: a temporary
#               directory, removed at the end
set -euo pipefail

usage() { sed -n '8,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -ge 1 ]] || usage
build=$1
shift
quotes=20000
rate=20000
journal=
while [[ $# -gt 0 ]]; do
  case $1 in
    --quotes) quotes=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --journal) journal=$2; shift 2 ;;
    *) usage ;;
  esac
done
# shellcheck source=../common/run_support.sh
source "$(dirname "$0")/../common/run_support.sh"
bin=$(programs_in "$build" md_feed_handler)

work=$(mktemp -d)
[[ -n $journal ]] || journal=$work/journal
prefix=md.$$
quotes_channel=$prefix.quotes
orders_channel=$prefix.orders
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  remove_channels "$build" "$quotes_channel" "$orders_channel"
  rm -rf "$work"
}
trap cleanup EXIT

# Subscribers first; each producer waits until its subscribers have attached, so nothing published
# is missed: the feed waits for strategy, risk monitor and recorder, the strategy for the gateway
# and the risk monitor.
"$bin/md_recorder" --channel "$quotes_channel" --journal "$journal" >"$work/recorder.out" &
recorder=$!
"$bin/md_order_gateway" --orders "$orders_channel" >"$work/gateway.out" &
gateway=$!
"$bin/md_risk_monitor" --quotes "$quotes_channel" --orders "$orders_channel" >"$work/risk.out" &
risk=$!
"$bin/md_strategy" --quotes "$quotes_channel" --orders "$orders_channel" >"$work/strategy.out" &
strategy=$!
"$bin/md_feed_handler" --channel "$quotes_channel" --quotes "$quotes" --rate "$rate" \
  >"$work/feed.out" &
feed=$!
pids=("$recorder" "$gateway" "$risk" "$strategy" "$feed")

wait "$feed" || { echo "FAIL: the feed handler exited with $?"; failed=1; }
wait "$strategy" || { echo "FAIL: the strategy exited with $?"; failed=1; }
wait "$gateway" || { echo "FAIL: the order gateway exited with $?"; failed=1; }
kill -TERM "$risk" "$recorder"
wait "$risk" || { echo "FAIL: the risk monitor exited with $?"; failed=1; }
wait "$recorder" || { echo "FAIL: the recorder exited with $?"; failed=1; }
pids=()

cat "$work/feed.out" "$work/strategy.out" "$work/gateway.out" "$work/risk.out" "$work/recorder.out"
echo
cores=$(nproc)
echo "End-to-end latency, quote send (feed handler, before its commit) -> order received (gateway):"
sed -n 's/^order gateway: quote send -> order received: /  /p' "$work/gateway.out"
echo "  It includes the strategy's wake-up, decision and order publish and the gateway's wake-up:"
echo "  5 processes share $cores cores here, so a wake-up may wait for a time slice, and an idle"
echo "  subscriber sleeps on a futex after 50 us of spinning (pin processes to cores of their own"
echo "  and spin for the lowest figures)."
echo

# The checks: each compares what two processes reported.
field() { sed -n "s/$2/\\1/p" "$work/$1.out" | head -n 1; }
published=$(field feed 'feed handler: published \([0-9]*\) quotes.*')
seen=$(field strategy 'strategy: \([0-9]*\) quotes.*')
in_order=$(field strategy 'strategy: .*, in order: \([a-z]*\),.*')
sent=$(field strategy 'strategy: sent \([0-9]*\) orders.*')
acked=$(field gateway 'order gateway: acked \([0-9]*\) orders.*')
intact=$(field gateway 'order gateway: .*each once and in order: \([a-z]*\).*')
recorded_last=$(field recorder 'recorder: the journal holds quotes 0\.\.\([0-9]*\) .*')
complete=$(field recorder 'recorder: .*every quote, in order, no gaps: \([a-z]*\)')

check "the feed published every quote" "$published" "$quotes"
check "the strategy saw every quote, in order" "$seen/$in_order" "$quotes/yes"
check "the gateway acked every order the strategy sent" "$acked" "$sent"
check "the gateway saw each order once, in order" "$intact" "yes"
check "the recorder's journal holds every quote, in order" "$recorded_last/$complete" \
  "$((quotes - 1))/yes"
[[ $failed == 0 ]] && echo "all checks passed"
exit "$failed"
