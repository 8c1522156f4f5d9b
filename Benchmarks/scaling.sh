#!/usr/bin/env bash
# Scaling across cores, for a machine with more of them than this project's
# 2-core CI machine: upper-echo on 1, 2, 4, 8 and 16 loops under each
# balance, beside the NIO peer on as many threads, each count in its own
# compare.sh run, with the server and the load generator on separate CPU
# sets (the server on CPUs 0..L-1, echo-load on the next L, or on what is
# left). A count that does not fit (2 x L CPUs) is skipped, saying so.
#
# Read msgs/s (throughput: does it grow with L?) and msgs/cpu-s (efficiency:
# does it hold?) against the one-loop row of the same run; the per-loop
# lines show how evenly each balance spread the connections.
#
# Usage: Benchmarks/scaling.sh [--loops "1 2 4 8 16"] [--repeat N] [--duration S]
#                              [--scenarios "CONNECTIONS:SIZE:PIPELINE ..."]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
counts="1 2 4 8 16"
repeat=3
duration=5
scenarios="100:64:16 1000:64:1 10000:64:16"
while [ $# -gt 0 ]; do
    case "$1" in
        --loops) counts="$2"; shift 2 ;;
        --repeat) repeat="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --scenarios) scenarios="$2"; shift 2 ;;
        *) echo "usage: $0 [--loops LIST] [--repeat N] [--duration S] [--scenarios LIST]" >&2; exit 2 ;;
    esac
done
cpus="$(nproc)"
for loops in $counts; do
    if [ $((2 * loops)) -gt "$cpus" ]; then
        echo "== $loops loops: skipped, needs $((2 * loops)) CPUs (server and client apart), this machine has $cpus" >&2
        continue
    fi
    server_cpus="0-$((loops - 1))"
    client_cpus="$loops-$((cpus - 1))"
    servers="upper-echo"
    if [ "$loops" -gt 1 ]; then
        servers="upper-echo upper-echo-l$loops-reuseport upper-echo-l$loops-acceptor upper-echo-l$loops-acceptor-round-robin nio nio-t$loops"
    fi
    echo "== $loops loops: server on CPUs $server_cpus, echo-load on $client_cpus" >&2
    "$here/compare.sh" --servers "$servers" --reference upper-echo --repeat "$repeat" --duration "$duration" \
        --scenarios "$scenarios" --server-cpus "$server_cpus" --client-cpus "$client_cpus"
done
