#!/usr/bin/env bash
# Runs INSTANCES upper-echo servers (default 2) on 127.0.0.1, ports PORT+1 to
# PORT+INSTANCES, and HAProxy in front of them on 127.0.0.1:PORT (default
# 8000), from deploy/haproxy.cfg with its server lines written for these
# instances. Prints where to connect; Ctrl-C drains and stops everything.
#
# Usage: scripts/cluster.sh [INSTANCES] [PORT]
# Environment: UPPER_ECHO, the upper-echo executable to run (default: built
# here with `swift build -c release`); HAPROXY, the haproxy executable.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="/opt/swift/usr/bin:$PATH"
instances="${1:-2}"
port="${2:-8000}"
case "$instances" in '' | *[!0-9]* | 0) echo "cluster.sh: INSTANCES must be a positive number" >&2; exit 2 ;; esac
case "$port" in '' | *[!0-9]*) echo "cluster.sh: PORT must be a number" >&2; exit 2 ;; esac
if [ $((port + instances)) -gt 65535 ]; then echo "cluster.sh: ports past 65535" >&2; exit 2; fi

haproxy="${HAPROXY:-$(command -v haproxy || true)}"
if [ -z "$haproxy" ]; then
    echo "cluster.sh: haproxy not found (Debian and Ubuntu: apt-get install haproxy)" >&2
    exit 1
fi
upper_echo="${UPPER_ECHO:-}"
if [ -z "$upper_echo" ]; then
    (cd "$root" && swift build -c release --product upper-echo >/dev/null)
    upper_echo="$(cd "$root" && swift build -c release --show-bin-path)/upper-echo"
fi

# Whether process $1 runs (an exited child not yet waited for is a zombie,
# which `kill -0` still finds).
running() {
    local state
    state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
    [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}

run="$(mktemp -d "${TMPDIR:-/tmp}/upper-echo-cluster.XXXXXX")"
pids=()
haproxy_pid=""
stop() {
    trap - INT TERM EXIT
    echo
    echo "stopping: the instances drain (SIGTERM), then HAProxy stops (SIGUSR1)"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for i in $(seq "${#pids[@]}"); do
        echo "s$i: $(grep -o 'stopped .*' "$run/s$i.log" | tail -1)"
    done
    if [ -n "$haproxy_pid" ]; then
        # A soft stop, asked again each second: a master still starting up
        # (it re-executes itself once its workers run) can miss the first;
        # after 10 s a hard stop.
        for _ in $(seq 10); do
            running "$haproxy_pid" || break
            kill -USR1 "$haproxy_pid" 2>/dev/null || break
            for _ in $(seq 20); do
                running "$haproxy_pid" || break 2
                sleep 0.05
            done
        done
        kill -TERM "$haproxy_pid" 2>/dev/null || true
        wait "$haproxy_pid" 2>/dev/null || true
    fi
    rm -rf "$run"
    exit "${1:-0}"
}
trap stop INT TERM EXIT

# The deploy configuration with this cluster's address, runtime socket and
# servers: everything else as deployed.
awk -v port="$port" -v instances="$instances" -v socket="$run/haproxy.sock" '
    /^    bind 127\.0\.0\.1:8000$/ { print "    bind 127.0.0.1:" port; next }
    /^    stats socket / { print "    stats socket " socket " mode 600 level admin"; next }
    /# BEGIN SERVERS/ { print; for (i = 1; i <= instances; i++) print "    server s" i " 127.0.0.1:" port + i; skip = 1; next }
    /# END SERVERS/ { skip = 0 }
    !skip { print }
' "$root/deploy/haproxy.cfg" >"$run/haproxy.cfg"

# Each in a session of its own (setsid), so that Ctrl-C reaches this script
# alone, which stops them in order: the instances would take the terminal's
# SIGINT as the start of a drain, and HAProxy as a hard stop.
for i in $(seq "$instances"); do
    setsid "$upper_echo" --host 127.0.0.1 --port $((port + i)) >"$run/s$i.log" 2>&1 </dev/null &
    pids+=($!)
done
# Each instance listens, or the cluster does not start.
for i in $(seq "$instances"); do
    for _ in $(seq 200); do
        grep -q "^listening on" "$run/s$i.log" && break
        if ! running "${pids[$((i - 1))]}"; then
            echo "cluster.sh: s$i (port $((port + i))) did not start: $(cat "$run/s$i.log")" >&2
            stop 1
        fi
        sleep 0.05
    done
done
setsid "$haproxy" -W -db -f "$run/haproxy.cfg" </dev/null &
haproxy_pid=$!

echo "upper-echo x$instances on 127.0.0.1:$((port + 1))-$((port + instances)) (logs in $run), HAProxy on 127.0.0.1:$port"
echo "  connect:      nc 127.0.0.1 $port"
echo "  load:         swift run -c release echo-load --port $port --connections 100 --pipeline 16"
echo "  server state: echo 'show servers state upper_echo' | nc -U $run/haproxy.sock"
echo "  drain one:    echo 'set server upper_echo/s1 state drain' | nc -U $run/haproxy.sock; kill -TERM ${pids[0]}"
echo "Ctrl-C stops everything."
# Returns only if HAProxy exits by itself (Ctrl-C runs `stop` instead).
status=0
wait "$haproxy_pid" || status=$?
haproxy_pid=""
echo "cluster.sh: haproxy exited by itself, with status $status" >&2
stop 1
