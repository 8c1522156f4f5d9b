#!/usr/bin/env bash
# Instructions per event in the reactor, counted by callgrind (valgrind):
# exact, and blind to the kernel, so a before/after reads the same on a busy
# machine as on an idle one. See Sources/loop-instructions for what one
# iteration does (4 connections ready per wake-up, 64 B each).
#
# Usage: [MODE=async] Benchmarks/loop-instructions.sh [LIBRARY_DIR]
#   LIBRARY_DIR: a checkout of swift-epoll to measure (default: this one),
#   e.g. a `git worktree add /tmp/before <commit>` for the before figure.
#   MODE=async: the connections are AsyncTCPConnections served by tasks on
#   the loop (the figure then includes the tasks' work in runOnce's jobs).
# Needs valgrind (apt-get install -y valgrind). With KEEP=FILE it keeps the
# longer run's callgrind output there, for `callgrind_annotate --tree=calling`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
library="$(cd "${1:-$here/..}" && pwd)"
export PATH="/opt/swift/usr/bin:$PATH"
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install -y valgrind" >&2; exit 1; }

# A scratch package around the same source, against the chosen library.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/pkg/Sources/loop-instructions"
cp "$here/Sources/loop-instructions/LoopInstructions.swift" "$work/pkg/Sources/loop-instructions/"
name="$(basename "$library")"
cat >"$work/pkg/Package.swift" <<SWIFT
// swift-tools-version: 6.0
import PackageDescription
let package = Package(
    name: "loop-instructions",
    dependencies: [.package(path: "$library")],
    targets: [
        .executableTarget(
            name: "loop-instructions",
            dependencies: [
                .product(name: "Reactor", package: "$name"),
                .product(name: "Selectors", package: "$name"),
                .product(name: "UpperEcho", package: "$name"),
            ]
        )
    ]
)
SWIFT
(cd "$work/pkg" && swift build -c release >&2)
# valgrind cannot read the Swift compiler's debug information: drop it, keep the symbols.
strip --strip-debug -o "$work/loop" "$work/pkg/.build/release/loop-instructions"

count() {  # count N -> "total runOnce" instructions for N iterations
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.$1" "$work/loop" "$1" "${MODE:-callbacks}" >/dev/null 2>&1
    local total run
    total="$(callgrind_annotate "$work/cg.$1" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')"
    run="$(callgrind_annotate --inclusive=yes "$work/cg.$1" \
        | awk '/EventLoopC7runOnce/ {gsub(",", "", $1); if ($1 > max) max = $1} END {print max + 0}')"
    echo "$total $run"
}
read -r total1 run1 <<<"$(count 50000)"
read -r total2 run2 <<<"$(count 100000)"
if [ -n "${KEEP:-}" ]; then cp "$work/cg.100000" "$KEEP"; fi
# The difference of two run lengths cancels start-up and set-up.
events=$((50000 * 4))
echo "library: $library ($(git -C "$library" rev-parse --short HEAD 2>/dev/null || echo '?')), ${MODE:-callbacks}"
awk -v r1="$run1" -v r2="$run2" -v t1="$total1" -v t2="$total2" -v e="$events" 'BEGIN {
    printf "EventLoop.runOnce, per event:        %6.0f instructions\n", (r2 - r1) / e
    printf "whole program, per event:            %6.0f instructions (the client'"'"'s write and read included)\n", (t2 - t1) / e
}'
