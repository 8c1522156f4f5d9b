#!/usr/bin/env bash
# Side by side: upper-echo against its peers (a C epoll server, SwiftNIO, the
# lesson's Python program), same service, same load, one run.
#
# Each server runs pinned to CPU 0, echo-load pinned to CPU 1. For every
# scenario it records msgs/s, p99 latency, the server's CPU % and RSS, and
# messages per server CPU-second: the fair figure, since on loopback the load
# generator is often the bottleneck. It prints one table with ratios against
# the C server and appends JSON lines to Benchmarks/results/.
#
# With --repeat N each scenario runs N rounds, every server once per round
# (so that a drift of the machine hits all servers alike), and the table
# shows each server's median, with ratios taken round by round against C.
# From the second round on, the servers run in a shuffled order (seeded by
# --seed, recorded as "position" in the results), so that no server always
# runs first or right after the same one.
#
# The server "baseline" is the upper-echo binary named by UPPER_ECHO_BASELINE
# (built from an older commit), for a before/after in one run; "swift-raw" is
# the C peer's loop in plain Swift, without the library (not in the default set);
# "c-again" is the C peer a second time, for an A/A run: its ratios against
# "c" show how far two identical servers drift apart on this machine, the
# noise any other ratio of the run has to be read against.
#
# Several loops: "upper-echo-l2-reuseport", "upper-echo-l2-acceptor" and
# "upper-echo-l2-acceptor-round-robin" are upper-echo with `--loops 2` and
# that balance (any count: -l4-, -l8-, ...); "nio-t2" is the NIO peer on a
# group of 2 threads (`--threads 2`). Plain "upper-echo" is `--loops 1`. A
# multi-loop server's row records each loop's accepted connections and bytes
# (read from its SIGHUP lines at the end of the window). With several loops
# the server needs more than CPU 0: --server-cpus and --client-cpus pin
# server and load generator (on a 2-core machine both get "0-1" and share
# them; then compare msgs per server CPU-second). --reference names the
# server every ratio is taken against (default: c); "upper-echo-again" is
# upper-echo a second time, the noise floor of ratios against upper-echo.
#
# Async servers (none in the default set): "upper-echo-async" is upper-echo
# with `--api async` (`--loops 1`), one task per connection on the loop's own
# thread, and "upper-echo-async-again" the same a second time, for an A/A
# run; "nio-async" is the SwiftNIO peer through NIOAsyncChannel, one event
# loop and one task per connection on the global executor, as Hummingbird
# runs it; "flyingsocks" is the same service on FlyingFox's FlyingSocks
# (AsyncSocket on its epoll SocketPool), one task per connection.
#
# Usage: Benchmarks/compare.sh [--quick] [--servers "upper-echo c nio python"] [--duration S]
#                              [--repeat N] [--seed N] [--scenarios "CONNECTIONS:SIZE:PIPELINE ..."]
#                              [--server-cpus LIST] [--client-cpus LIST] [--reference SERVER]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
export PATH="/opt/swift/usr/bin:$PATH"
# shellcheck source=Benchmarks/common.sh
. "$here/common.sh"

duration=5
warmup=1
repeat=1
seed=1
servers="upper-echo c nio python"
server_cpus=0
client_cpus=1
reference=c
scenarios=(
    "1 64 1" "1 64 16"
    "100 64 1" "100 64 16"
    "1000 64 1" "1000 64 16"
    "10000 64 1" "10000 64 16"
    "100 16384 1"
)
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) duration=2; scenarios=("1 64 1" "100 64 16" "1000 64 1" "100 16384 1"); shift ;;
        --servers) servers="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --repeat) repeat="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        --server-cpus) server_cpus="$2"; shift 2 ;;
        --client-cpus) client_cpus="$2"; shift 2 ;;
        --reference) reference="$2"; shift 2 ;;
        --scenarios)
            read -r -a given <<<"$2"
            scenarios=()
            for one in "${given[@]}"; do scenarios+=("${one//:/ }"); done
            shift 2 ;;
        *) echo "usage: $0 [--quick] [--servers LIST] [--duration S] [--repeat N] [--seed N] [--scenarios LIST] [--server-cpus LIST] [--client-cpus LIST] [--reference SERVER]" >&2; exit 2 ;;
    esac
done

echo "building (release)..." >&2
(cd "$root" && swift build -c release --product upper-echo >&2 && swift build -c release --product echo-load >&2)
(cd "$here" && swift build -c release --product nio-upper-echo >&2 && swift build -c release --product c-upper-echo >&2 \
    && swift build -c release --product swift-raw-upper-echo >&2 \
    && swift build -c release --product nio-async-upper-echo >&2 \
    && swift build -c release --product flyingsocks-upper-echo >&2)
bin="$root/.build/release"
peers="$here/.build/release"

server_command() {
    case "$1" in
        upper-echo | upper-echo-again) echo "$bin/upper-echo --port 0 --loops 1 --log-level error" ;;
        upper-echo-async | upper-echo-async-again) echo "$bin/upper-echo --port 0 --loops 1 --api async --log-level error" ;;
        upper-echo-l*)
            local rest="${1#upper-echo-l}"
            echo "$bin/upper-echo --port 0 --loops ${rest%%-*} --balance ${rest#*-} --log-level error" ;;
        nio-t*) echo "$peers/nio-upper-echo 0 --threads ${1#nio-t}" ;;
        # Another build of upper-echo (an older commit), for a before/after.
        baseline) echo "${UPPER_ECHO_BASELINE:?set UPPER_ECHO_BASELINE to an upper-echo binary} --port 0 --log-level error" ;;
        c | c-again) echo "$peers/c-upper-echo 0" ;;
        swift-raw) echo "$peers/swift-raw-upper-echo 0" ;;
        nio) echo "$peers/nio-upper-echo 0" ;;
        nio-async) echo "$peers/nio-async-upper-echo 0" ;;
        flyingsocks) echo "$peers/flyingsocks-upper-echo 0" ;;
        python) echo "python3 $here/peers/python_upper_echo.py 0" ;;
    esac
}

mkdir -p "$here/results"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
results="$here/results/compare-$stamp.jsonl"
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(swift --version 2>&1 | head -1)"
echo "# $machine" >&2

for scenario in "${scenarios[@]}"; do
    read -r connections size pipeline <<<"$scenario"
    for round in $(seq "$repeat"); do
        order="$servers"
        if [ "$round" -gt 1 ]; then
            order="$(python3 -c 'import random, sys; s = sys.argv[3].split(); random.Random(sys.argv[1] + ":" + sys.argv[2]).shuffle(s); print(" ".join(s))' \
                "$seed" "$round" "$servers")"
        fi
        position=0
        for server in $order; do
            position=$((position + 1))
            out="$(mktemp)"
            # shellcheck disable=SC2046
            taskset -c "$server_cpus" $(server_command "$server") >"$out" 2>/dev/null &
            pid=$!
            port="$(listening_port "$out")"
            if [ -z "$port" ]; then echo "$server did not start" >&2; kill "$pid" 2>/dev/null; continue; fi
            echo "== $server: $connections connections x $size B x pipeline $pipeline (round $round/$repeat)" >&2
            status=0
            line="$(taskset -c "$client_cpus" "$bin/echo-load" --port "$port" --connections "$connections" --size "$size" \
                --pipeline "$pipeline" --duration "$duration" --warmup "$warmup" --server-pid "$pid" --json)" || status=$?
            per_loop=""
            case "$server" in
                upper-echo-l*)
                    # Each loop's counters, from the SIGHUP report (a loop=K line per loop, then stats).
                    kill -HUP "$pid" 2>/dev/null || true
                    for _ in $(seq 100); do grep -q '^stats ' "$out" && break; sleep 0.05; done
                    per_loop="$(grep '^loop=' "$out" | tr '\n' ';')" ;;
            esac
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            rm -f "$out"
            [ -n "$line" ] || line='{}'
            python3 - "$server" "$status" "$line" "$machine" "$round" "$position" "$per_loop" "$server_cpus" "$client_cpus" >>"$results" <<'PY'
import json, sys
server, status, line, machine = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
round_, position, per_loop = int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
record = json.loads(line)
record.update(server=server, exit_status=status, machine=machine, round=round_, position=position,
              server_cpus=sys.argv[8], client_cpus=sys.argv[9])
loops = [dict(pair.split("=") for pair in report.split()) for report in per_loop.split(";") if report.strip()]
if loops:
    record["per_loop_accepted"] = [int(loop["accepted"]) for loop in loops]
    record["per_loop_bytes_in"] = [int(loop["bytes_in"]) for loop in loops]
print(json.dumps(record))
PY
        done
    done
done

python3 "$here/compare_table.py" "$results" "$reference"
echo "results: $results" >&2
