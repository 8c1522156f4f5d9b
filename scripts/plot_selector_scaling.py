#!/usr/bin/env python3
"""Plot selector-bench's CSV: ns per select call against watched descriptors.

Usage: plot_selector_scaling.py [CSV] [PNG]
       (defaults: docs/selector-scaling.csv, docs/selector-scaling.png)

One solid line per backend (the library's select(timeout: .zero)), a dashed
line of the same colour for the bare syscall at the same N, log-log, and a
vertical line at FD_SETSIZE (1024), where select(2) stops.
"""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

FD_SETSIZE = 1024
COLOURS = {"epoll": "tab:green", "poll": "tab:blue", "select": "tab:red"}
SYSCALLS = {"epoll": "epoll_wait", "poll": "poll(2)", "select": "select(2)"}


def read_points(path):
    """{backend: [(watched, ns, raw_ns)]} sorted by watched, and the ready counts seen."""
    points = defaultdict(list)
    ready = set()
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            points[row["backend"]].append(
                (int(row["watched"]), float(row["ns_per_call"]), float(row["raw_ns_per_call"]))
            )
            ready.add(row["ready"])
    for rows in points.values():
        rows.sort()
    return points, ready


def plot(points, ready, output):
    figure, axes = plt.subplots(figsize=(9, 6), dpi=120)
    for backend in sorted(points, key=lambda name: list(COLOURS).index(name) if name in COLOURS else 99):
        watched, library, raw = zip(*points[backend])
        colour = COLOURS.get(backend)
        axes.plot(watched, library, "o-", color=colour, linewidth=2, label=f"{backend.capitalize()}Selector.select")
        axes.plot(watched, raw, "s--", color=colour, alpha=0.6, markersize=4,
                  label=f"raw {SYSCALLS.get(backend, backend)}")
    axes.axvline(FD_SETSIZE, color="grey", linestyle=":", linewidth=1.5)
    axes.annotate("FD_SETSIZE = 1024:\nselect(2) cannot watch\ndescriptors from here on", xy=(FD_SETSIZE, 0.97),
                  xycoords=("data", "axes fraction"), xytext=(6, 0), textcoords="offset points",
                  va="top", fontsize=9, color="dimgrey")
    axes.set_xscale("log")
    axes.set_yscale("log")
    thousands = FuncFormatter(lambda value, _: f"{value:,.0f}")
    axes.xaxis.set_major_formatter(thousands)
    axes.yaxis.set_major_formatter(thousands)
    axes.set_xlabel("watched descriptors (eventfds)")
    axes.set_ylabel("ns per select(timeout: 0) call (median)")
    ready_text = ", ".join(sorted(ready, key=int))
    axes.set_title(f"Cost of one non-blocking select with {ready_text} ready: epoll stays flat, poll and select grow")
    axes.grid(True, which="both", linewidth=0.4, alpha=0.5)
    axes.legend(loc="upper left", fontsize=9)
    figure.tight_layout()
    figure.savefig(output)
    print(f"wrote {output}")


def main(arguments):
    if len(arguments) > 2 or any(argument.startswith("-") for argument in arguments):
        print(__doc__, file=sys.stderr)
        return 2
    source = arguments[0] if arguments else "docs/selector-scaling.csv"
    output = arguments[1] if len(arguments) > 1 else "docs/selector-scaling.png"
    points, ready = read_points(source)
    if not points:
        print(f"{source}: no measured points", file=sys.stderr)
        return 1
    plot(points, ready, output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
