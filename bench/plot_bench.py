#!/usr/bin/python3
"""Plots `shmbus bench ... --json` reports as PNG and SVG.

    shmbus bench pingpong --json > pingpong.json
    shmbus bench throughput --json > throughput.json
    bench/plot_bench.py pingpong.json throughput.json --out docs/plots

For each report it writes, into --out:
  <bench>-latency.png/.svg     latency percentile curves, HdrHistogram style: the value at each
                               percentile against 1/(1 - percentile) on a log axis, one curve per
                               transport (pingpong), configuration (fanout) or side (journal)
  <bench>-throughput.png/.svg  throughput bars (throughput.png/.svg for the throughput bench), the raw baselines drawn apart from shmbus
                               (throughput, fanout, journal)
Titles carry the run's metadata (version, commit, CPU, kernel, date, rounds). The written paths are
printed, one a line. Exit status 2 when matplotlib is missing, 1 when a report cannot be read.
The JSON fields are described in docs/performance.md.
"""

import argparse
import json
import math
import os
import sys

# matplotlib is imported only once the reports have been read (load_matplotlib): a bad report is
# refused at once, without the second or so its import takes.
plt = FixedLocator = FuncFormatter = NullLocator = None


def load_matplotlib():
    global plt, FixedLocator, FuncFormatter, NullLocator
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as pyplot
        from matplotlib import ticker
    except ImportError:  # the caller (a test, a user) is told plainly
        sys.stderr.write("plot_bench.py: matplotlib is missing (Debian: apt-get install python3-matplotlib)\n")
        sys.exit(2)
    plt, FixedLocator, FuncFormatter, NullLocator = (pyplot, ticker.FixedLocator, ticker.FuncFormatter,
                                                     ticker.NullLocator)
    plt.rcParams["svg.hashsalt"] = "shmbus"  # stable ids in the SVG, so reruns diff cleanly
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, and the titles searchable


# Reference baselines: what a shared-memory transport can reach at best.
RAW_BASELINES = {"raw-shm", "raw-seq"}
SHMBUS_COLOUR = "#1f77b4"
BASELINE_COLOUR = "#7f7f7f"
OTHER_COLOUR = "#ff7f0e"


def metadata_title(report, what):
    """Two title lines: what is plotted with the run's shape, then the build and the machine."""
    meta = report.get("metadata", {})
    commit = meta.get("git_commit", "unknown")
    commit_text = commit if commit == "unknown" else commit[:12] + (" dirty" if commit.endswith("-dirty") else "")
    kernel = " ".join(meta.get("kernel", "unknown").split()[:2])
    size = report.get("size")
    shape = f"{size} B, " if size is not None else ""
    first = (f"shmbus {report['bench']}: {what} ({shape}{meta.get('rounds', report.get('rounds', '?'))} rounds) "
             f"- shmbus {meta.get('shmbus_version', '?')} @ {commit_text}")
    used = ",".join(str(c) for c in meta.get("cpus_used", [])) or "not pinned"
    second = (f"{meta.get('cpu_model', 'unknown CPU')}, {meta.get('cpus', '?')} CPUs (used {used}), "
              f"{kernel}, {meta.get('date_utc', 'undated')}")
    return first + "\n" + second


def percentile_axis(axes, max_inverse_tail):
    """Log x axis of 1/(1 - p), labelled in percentiles: 0%, 90%, 99%, 99.9%..."""
    axes.set_xscale("log")
    decades = max(1, math.ceil(math.log10(max(max_inverse_tail, 10))))
    ticks = [10**d for d in range(decades + 1)]
    axes.xaxis.set_major_locator(FixedLocator(ticks))
    axes.xaxis.set_minor_locator(NullLocator())

    def label(value, _position):
        if value <= 1:
            return "0%"
        nines = round(math.log10(value))
        return f"{100 - 100 / 10**nines:.{max(0, nines - 2)}f}%"

    axes.xaxis.set_major_formatter(FuncFormatter(label))
    axes.set_xlim(1, 10**decades)
    axes.set_xlabel("percentile")
    axes.set_yscale("log")
    axes.set_ylabel("latency (ns)")
    axes.grid(True, which="both", alpha=0.3)


def draw_curves(axes, curves, title):
    """curves: [(label, distribution lines)]. The closing line at percentile 1 has no finite x."""
    widest = 10.0
    for label, lines in curves:
        points = [(1.0 / (1.0 - line["percentile"]), max(line["value_ns"], 1))
                  for line in lines if line["percentile"] < 1.0]
        if not points:
            continue
        xs, ys = zip(*points)
        widest = max(widest, xs[-1])
        axes.step(xs, ys, where="post", label=label)
    percentile_axis(axes, widest)
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8)


def bar_colour(name):
    if name in RAW_BASELINES:
        return BASELINE_COLOUR
    return SHMBUS_COLOUR if name.startswith("shmbus") else OTHER_COLOUR


def draw_bars(axes, bars, unit, title):
    """bars: [(label, value, spread or None, colour)]: one bar each, labelled with its value."""
    labels = [b[0] for b in bars]
    values = [b[1] for b in bars]
    drawn = axes.bar(range(len(bars)), values, color=[b[3] for b in bars])
    for rect, (_, value, spread, _) in zip(drawn, bars):
        text = f"{value:.3g}" + (f"\n±{spread * 50:.0f}%" if spread else "")
        axes.annotate(text, (rect.get_x() + rect.get_width() / 2, rect.get_height()),
                      ha="center", va="bottom", fontsize=7)
    axes.set_xticks(range(len(bars)))
    axes.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    axes.set_ylabel(unit)
    axes.set_title(title, fontsize=10)
    axes.grid(True, axis="y", alpha=0.3)


def save(figure, out_dir, stem):
    written = []
    for extension in ("png", "svg"):
        path = os.path.join(out_dir, f"{stem}.{extension}")
        # No date in the files, so a rerun on the same report changes nothing.
        metadata = {"Date": None} if extension == "svg" else {"Software": None}
        figure.savefig(path, dpi=110, bbox_inches="tight", metadata=metadata)
        written.append(path)
    plt.close(figure)
    return written


def spread_of(row, figure):
    return row.get("spread", {}).get(figure)


def plot_pingpong(report, out_dir):
    figure, axes = plt.subplots(figsize=(9, 5.5))
    curves = [(row["transport"], row["distribution"]) for row in report["results"] if row.get("distribution")]
    draw_curves(axes, curves, "round-trip time, every round trip of every round")
    figure.suptitle(metadata_title(report, "round-trip latency"), fontsize=9)
    return save(figure, out_dir, "pingpong-latency")


def plot_throughput(report, out_dir):
    figure, axes = plt.subplots(figsize=(9, 5.5))
    bars = [(row["transport"], row["msgs_per_s"] / 1e6, spread_of(row, "msgs_per_s"), bar_colour(row["transport"]))
            for row in report["results"]]
    draw_bars(axes, bars, "million messages per second",
              "median over the rounds; grey: raw shared-memory baselines, orange: other IPC; ± half the spread between rounds")
    figure.suptitle(metadata_title(report, f"one-way stream, {report.get('duration_s', '?')} s per round"), fontsize=9)
    return save(figure, out_dir, "throughput")


def plot_fanout(report, out_dir):
    rows = report["results"]
    figure, axes = plt.subplots(figsize=(9, 5.5))
    curves = [(f"{row['policy']}, {row['subscribers']} sub", row["distribution"]) for row in rows if row.get("distribution")]
    draw_curves(axes, curves, "delivery latency, every delivery of every round")
    figure.suptitle(metadata_title(report, "fan-out delivery latency"), fontsize=9)
    written = save(figure, out_dir, "fanout-latency")

    figure, axes = plt.subplots(figsize=(9, 5.5))
    bars = [(f"{row['policy']}, {row['subscribers']} sub", row["publisher_msgs_per_s"] / 1e6,
             spread_of(row, "publisher_msgs_per_s"),
             BASELINE_COLOUR if row["subscribers"] == 1 else SHMBUS_COLOUR) for row in rows]
    draw_bars(axes, bars, "million messages per second",
              "publisher rate; grey: one subscriber, the reference of the ratios")
    figure.suptitle(metadata_title(report, "fan-out publisher rate"), fontsize=9)
    return written + save(figure, out_dir, "fanout-throughput")


def plot_journal(report, out_dir):
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    for axes, part, title in ((left, "publisher", "publisher try_claim..commit"),
                              (right, "latency", "one-way latency (scheduling noise dominates)")):
        block = report[part]
        curves = [(f"{side.replace('_', ' ')}", block[side]["distribution"])
                  for side in ("without_journal", "with_journal") if block[side].get("distribution")]
        draw_curves(axes, curves, title)
    figure.suptitle(metadata_title(report, "what a journaler costs"), fontsize=9)
    written = save(figure, out_dir, "journal-latency")

    figure, axes = plt.subplots(figsize=(9, 5.5))
    direct = report["direct_write"]
    bars = [("plain O_DIRECT write", direct["mb_per_s"], spread_of(direct, "mb_per_s"), BASELINE_COLOUR)]
    bars += [(f"journal {row['size']} B", row["mb_per_s"], spread_of(row, "msgs_per_s"), SHMBUS_COLOUR)
             for row in report["throughput"]]
    draw_bars(axes, bars, "MB/s of journal bytes", f"journaler against the disk's plain bandwidth ({report['dir']})")
    figure.suptitle(metadata_title(report, "journal throughput"), fontsize=9)
    return written + save(figure, out_dir, "journal-throughput")


PLOTTERS = {"pingpong": plot_pingpong, "throughput": plot_throughput, "fanout": plot_fanout, "journal": plot_journal}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("reports", nargs="+", help="files written by `shmbus bench ... --json`")
    parser.add_argument("--out", default=".", help="directory for the PNG and SVG files (default: .)")
    options = parser.parse_args()
    reports = []
    for path in options.reports:
        try:
            with open(path, encoding="utf-8") as source:
                report = json.load(source)
            reports.append((report, PLOTTERS[report["bench"]]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            sys.stderr.write(f"plot_bench.py: {path}: not a shmbus bench report ({error})\n")
            return 1
    load_matplotlib()
    os.makedirs(options.out, exist_ok=True)
    for report, plotter in reports:
        for written in plotter(report, options.out):
            print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
