#!/usr/bin/env python3
"""A live quote monitor: subscribes to a channel of quotes and prints, every --every quotes, the
rolling mid price over the last --window quotes and the publish-to-receive latency percentiles.

A quote is 32 bytes, little-endian: counter (u64), bid (f64), ask (f64), spread in ticks (u64);
the record's key is the instrument. Run it alone with a publisher of its own:

  quote_monitor.py CHANNEL --publish --rate 5000 &     # a quote generator
  quote_monitor.py CHANNEL                              # the monitor, until Ctrl-C
  quote_monitor.py CHANNEL --demo 5000                  # both: starts the generator, monitors
                                                        # 5000 quotes, checks them, exits
"""
import argparse
import collections
import math
import os
import struct
import subprocess
import sys
import time

import numpy as np

import shmbus

QUOTE = struct.Struct("<QddQ")


def publish(channel, count, rate, instrument):
    pub = shmbus.Publisher(channel, capacity=1 << 20, max_message=256, accept_existing=True)
    period = 1.0 / rate if rate > 0 else 0.0
    start = time.monotonic()
    mid = 1.0850
    for i in range(count if count > 0 else sys.maxsize):
        mid += 0.00001 * math.sin(i / 50.0)
        bid, ask = round(mid - 0.00005, 5), round(mid + 0.00005, 5)
        pub.publish(QUOTE.pack(i, bid, ask, 1), key=instrument)
        if period:
            delay = start + (i + 1) * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def monitor(channel, count, every, window, expect_instrument=None):
    mids = collections.deque(maxlen=window)
    latencies = []
    seen = 0
    expected_counter = 0
    sub = shmbus.Subscriber(channel, policy="drop", start="earliest", name="")
    while count <= 0 or seen < count:
        for m in sub.poll(max=512, timeout=1.0):
            now = time.time_ns()
            counter, bid, ask, _ = QUOTE.unpack(m.payload)
            if expect_instrument is not None:
                if m.key != expect_instrument or counter != expected_counter or m.lost_before:
                    sys.exit(f"quote {seen}: counter {counter} (expected {expected_counter}), key "
                             f"{m.key!r}, lost_before {m.lost_before}")
                expected_counter += 1
            mids.append((bid + ask) / 2)
            latencies.append(now - m.timestamp_ns)
            seen += 1
            if seen % every == 0:
                lat = np.array(latencies[-every:], dtype=np.int64)
                p50, p99, p999 = np.percentile(lat, [50, 99, 99.9])
                print(f"{seen:8d} quotes  mid {sum(mids) / len(mids):.6f} (last {len(mids)})  "
                      f"latency p50 {p50 / 1e3:7.1f} us  p99 {p99 / 1e3:7.1f} us  "
                      f"p99.9 {p999 / 1e3:7.1f} us  max {lat.max() / 1e3:7.1f} us  "
                      f"lost {sub.lost}", flush=True)
            if 0 < count <= seen:
                break
    return seen


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("channel")
    parser.add_argument("--publish", action="store_true", help="generate quotes instead")
    parser.add_argument("--demo", type=int, metavar="N",
                        help="start a generator, monitor N quotes, check each, exit")
    parser.add_argument("--count", type=int, default=0, help="stop after N (0: never)")
    parser.add_argument("--rate", type=float, default=5000, help="quotes per second (publish)")
    parser.add_argument("--every", type=int, default=1000, help="print every N quotes")
    parser.add_argument("--window", type=int, default=100, help="quotes in the rolling mid")
    parser.add_argument("--instrument", default="EURUSD")
    a = parser.parse_args()
    instrument = a.instrument.encode()
    if a.publish:
        publish(a.channel, a.count, a.rate, instrument)
        return
    if a.demo:
        # The channel exists before either side starts, so the monitor reads from the first quote.
        shmbus.Publisher(a.channel, capacity=1 << 20, max_message=256, accept_existing=True).close()
        generator = subprocess.Popen([sys.executable, os.path.abspath(__file__), a.channel,
                                      "--publish", "--count", str(a.demo), "--rate", str(a.rate),
                                      "--instrument", a.instrument])
        seen = monitor(a.channel, a.demo, a.every, a.window, expect_instrument=instrument)
        if generator.wait(timeout=60) != 0:
            sys.exit("the generator failed")
        print(f"OK: {seen} quotes, in order, none lost")
        return
    try:
        monitor(a.channel, a.count, a.every, a.window)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
