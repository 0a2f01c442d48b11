#!/usr/bin/env python3
"""Loads a recorded journal (`shmbus record CHANNEL --dir DIR`) into numpy and plots the
inter-arrival times of its records (publish time to publish time) with matplotlib into a PNG:
their distribution (log scale) and how they moved over the session.

  journal_interarrival.py DIR [--out interarrival.png] [--from-seq N] [--to-seq N]
"""
import argparse
import sys
import time

import matplotlib

matplotlib.use("Agg")  # no display: write files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import shmbus  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir")
    parser.add_argument("--out", default="interarrival.png")
    parser.add_argument("--from-seq", type=int, default=None)
    parser.add_argument("--to-seq", type=int, default=None)
    a = parser.parse_args()

    journal = shmbus.Journal(a.dir)
    if a.from_seq is not None:
        journal.seek_sequence(a.from_seq)
    started = time.perf_counter()
    records = journal.read(to_sequence=a.to_seq)
    took = time.perf_counter() - started
    n = len(records)
    if n < 2:
        sys.exit(f"{a.dir}: {n} record(s): nothing to plot")
    gaps_us = np.diff(records.timestamp_ns) / 1e3
    p50, p99, p999 = np.percentile(gaps_us, [50, 99, 99.9])
    print(f"{n} records (seq {records.sequence[0]}..{records.sequence[-1]}, "
          f"{len(records.payloads)} payload bytes, {len(records.gaps)} gap records) read in "
          f"{took * 1e3:.1f} ms; inter-arrival p50 {p50:.2f} us, p99 {p99:.2f} us, "
          f"p99.9 {p999:.2f} us, max {gaps_us.max():.2f} us")

    fig, (hist, series) = plt.subplots(2, 1, figsize=(9, 7))
    positive = gaps_us[gaps_us > 0]
    bins = np.logspace(np.log10(max(positive.min(), 1e-3)), np.log10(positive.max() * 1.01), 60) \
        if len(positive) else 60
    hist.hist(positive, bins=bins)
    hist.set_xscale("log")
    hist.set_xlabel("inter-arrival time (us, log scale)")
    hist.set_ylabel("records")
    hist.set_title(f"{a.dir}: {n} records, p50 {p50:.2f} us, p99 {p99:.2f} us")
    elapsed_s = (records.timestamp_ns[1:] - records.timestamp_ns[0]) / 1e9
    series.plot(elapsed_s, gaps_us, ",", alpha=0.6)
    series.set_yscale("symlog", linthresh=1.0)
    series.set_xlabel("seconds since the first record")
    series.set_ylabel("inter-arrival (us)")
    fig.tight_layout()
    fig.savefig(a.out, dpi=100)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
