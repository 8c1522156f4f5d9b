#!/usr/bin/env bash
# Measures what one select(timeout: .zero) costs with each selector backend as
# the number of watched descriptors grows, and plots it:
#
#   scripts/selector-scaling.sh [selector-bench options]
#
# Builds selector-bench in release, runs the default sweep (epoll, poll,
# select; N = 10 ... 19000; 1 ready) writing docs/selector-scaling.csv, then
# draws docs/selector-scaling.png (installing matplotlib with pip if needed).
# Extra arguments go to selector-bench (see `selector-bench --help`).
# SELECTOR_BENCH_SCRATCH_PATH overrides the build directory (default .build).
set -euo pipefail

cd "$(dirname "$0")/.."
scratch="${SELECTOR_BENCH_SCRATCH_PATH:-.build}"

swift build --scratch-path "$scratch" -c release --product selector-bench
bench="$(swift build --scratch-path "$scratch" -c release --show-bin-path)/selector-bench"

mkdir -p docs
"$bench" --csv docs/selector-scaling.csv "$@"

if ! python3 -c "import matplotlib" 2>/dev/null; then
    python3 -m pip install --quiet matplotlib
fi
python3 scripts/plot_selector_scaling.py docs/selector-scaling.csv docs/selector-scaling.png
