#!/usr/bin/env bash
# What the balancer's hop costs: one upper-echo instance behind HAProxy
# (deploy/haproxy.cfg's settings, one thread), echo-load through HAProxy, and
# the CPU time HAProxy and the instance each spent on the same messages.
# The ratio HAProxy CPU / instance CPU is the hop's cost in instances'
# worth of CPU per message. Both processes run on CPU 0, echo-load on CPU 1.
#
# Each scenario runs --repeat rounds; the table shows each round's ratio
# and the median. Measure on a quiet machine: nothing else may run.
#
# Usage: Benchmarks/proxy-hop.sh [--repeat N] [--duration S] [--scenarios "CONNECTIONS:SIZE:PIPELINE ..."]
# Needs haproxy (apt-get install -y haproxy).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
export PATH="/opt/swift/usr/bin:$PATH"
# shellcheck source=Benchmarks/common.sh
. "$here/common.sh"

repeat=3
duration=5
scenarios=("100 64 1" "100 64 16" "1000 64 1")
while [ $# -gt 0 ]; do
    case "$1" in
        --repeat) repeat="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --scenarios)
            read -r -a given <<<"$2"
            scenarios=()
            for one in "${given[@]}"; do scenarios+=("${one//:/ }"); done
            shift 2 ;;
        *) echo "usage: $0 [--repeat N] [--duration S] [--scenarios LIST]" >&2; exit 2 ;;
    esac
done
haproxy="$(command -v haproxy || true)"
[ -n "$haproxy" ] || { echo "needs haproxy: apt-get install -y haproxy" >&2; exit 1; }

echo "building (release)..." >&2
(cd "$root" && swift build -c release --product upper-echo >&2 && swift build -c release --product echo-load >&2)
bin="$root/.build/release"
work="$(mktemp -d)"
cleanup() {
    [ -n "${proxy_pid:-}" ] && kill -TERM "$proxy_pid" 2>/dev/null || true
    [ -n "${server_pid:-}" ] && kill -TERM "$server_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# CPU seconds (user + system, every thread) process $1 has used.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

taskset -c 0 "$bin/upper-echo" --port 0 --loops 1 --log-level error >"$work/server.out" 2>&1 &
server_pid=$!
backend_port="$(listening_port "$work/server.out")"
[ -n "$backend_port" ] || { echo "upper-echo did not start" >&2; exit 1; }
proxy_port=$((backend_port + 1))
# The deployed configuration, on these ports, one thread, no runtime socket.
awk -v port="$proxy_port" -v backend="$backend_port" '
    /^    bind 127\.0\.0\.1:8000$/ { print "    bind 127.0.0.1:" port; next }
    /^    stats socket / { print "    nbthread 1"; next }
    /# BEGIN SERVERS/ { print; print "    server s1 127.0.0.1:" backend; skip = 1; next }
    /# END SERVERS/ { skip = 0 }
    /^    log / { next }
    !skip { print }
' "$root/deploy/haproxy.cfg" >"$work/haproxy.cfg"
taskset -c 0 "$haproxy" -db -f "$work/haproxy.cfg" >"$work/haproxy.out" 2>&1 &
proxy_pid=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$proxy_port") 2>/dev/null && break
    sleep 0.05
done
"$haproxy" -v | sed -n 1p >&2

printf '%-22s %s\n' "scenario" "HAProxy CPU / upper-echo CPU per message, each round; median"
for scenario in "${scenarios[@]}"; do
    read -r connections size pipeline <<<"$scenario"
    ratios=()
    for round in $(seq "$repeat"); do
        proxy_before="$(cpu_seconds "$proxy_pid")"
        server_before="$(cpu_seconds "$server_pid")"
        line="$(taskset -c 1 "$bin/echo-load" --port "$proxy_port" --connections "$connections" --size "$size" \
            --pipeline "$pipeline" --duration "$duration" --warmup 1 --json)"
        proxy_after="$(cpu_seconds "$proxy_pid")"
        server_after="$(cpu_seconds "$server_pid")"
        ratio="$(python3 -c '
import json, sys
report = json.loads(sys.argv[1])
errors = sum(report[key] for key in ("mismatches", "resets", "unexpected_eofs", "failed_connects", "unanswered"))
proxy = float(sys.argv[3]) - float(sys.argv[2])
server = float(sys.argv[5]) - float(sys.argv[4])
if errors: sys.exit("echo-load saw %s errors" % errors)
print("%.2f" % (proxy / server))
' "$line" "$proxy_before" "$proxy_after" "$server_before" "$server_after")"
        ratios+=("$ratio")
        echo "$connections x $size B x p$pipeline round $round: $ratio (HAProxy $proxy_before -> $proxy_after s, upper-echo $server_before -> $server_after s)" >&2
    done
    median="$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }')"
    printf '%-22s %s; median %s\n' "$connections x $size B x p$pipeline" "${ratios[*]}" "$median"
done
