#!/usr/bin/env python3
"""How fast shmbus.Journal reads a recorded journal into numpy arrays, and, beside it in the same
run, how fast per-record iteration is. Reads the whole journal --runs times each way (the files
in the page cache after the first) and prints the median and the spread.

  journal_read_rate.py DIR [--runs 5]

Make a journal of a million 64-byte records with:
  shmbus record CH --dir DIR &  shmbus pub CH --count 1000000 --size 64;  kill -INT %1
"""
import argparse
import statistics
import time

import shmbus


def timed(fn, runs):
    rates = []
    count = 0
    for _ in range(runs):
        started = time.perf_counter()
        count = fn()
        rates.append(count / (time.perf_counter() - started))
    return count, rates


def read_arrays(directory):
    return len(shmbus.Journal(directory).read())


def iterate(directory):
    return sum(1 for _ in shmbus.Journal(directory))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir")
    parser.add_argument("--runs", type=int, default=5)
    a = parser.parse_args()
    read_arrays(a.dir)  # warm the page cache
    for name, fn in (("read() into numpy", read_arrays), ("iteration", iterate)):
        count, rates = timed(lambda: fn(a.dir), a.runs)
        print(f"{name:18s} {count} records: median {statistics.median(rates) / 1e6:.2f} M "
              f"records/s (min {min(rates) / 1e6:.2f}, max {max(rates) / 1e6:.2f}, {a.runs} runs)")


if __name__ == "__main__":
    main()
