#!/usr/bin/env bash
# Server memory per idle connection: start each server, read its RSS, open N
# idle connections from another process (each sends one message and reads
# the reply, so every connection has done real work), read the RSS again.
# Prints KiB per connection above the baseline, per server.
#
# Usage: Benchmarks/idle-rss.sh [CONNECTIONS] [SERVERS...]   (default 10000, all)
# "baseline" is the upper-echo binary (and flags) named by UPPER_ECHO_BASELINE.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
export PATH="/opt/swift/usr/bin:$PATH"
# shellcheck source=Benchmarks/common.sh
. "$here/common.sh"
connections="${1:-10000}"
shift || true
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(upper-echo upper-echo-async c nio python)

(cd "$root" && swift build -c release --product upper-echo >&2)
(cd "$here" && swift build -c release --product nio-upper-echo >&2 && swift build -c release --product c-upper-echo >&2)

command_for() {
    case "$1" in
        upper-echo) echo "$root/.build/release/upper-echo --port 0 --log-level error" ;;
        upper-echo-async) echo "$root/.build/release/upper-echo --port 0 --api async --log-level error" ;;
        # Another build (an older commit), for a before/after, as in compare.sh.
        baseline) echo "${UPPER_ECHO_BASELINE:?set UPPER_ECHO_BASELINE to an upper-echo binary} --port 0 --log-level error" ;;
        c) echo "$here/.build/release/c-upper-echo 0" ;;
        nio) echo "$here/.build/release/nio-upper-echo 0" ;;
        python) echo "python3 $here/peers/python_upper_echo.py 0" ;;
    esac
}

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

printf '%-16s %12s %12s %12s %14s\n' server connections "base KiB" "loaded KiB" "KiB/connection"
for server in "${servers[@]}"; do
    out="$(mktemp)"
    # shellcheck disable=SC2046
    $(command_for "$server") >"$out" 2>/dev/null &
    pid=$!
    port="$(listening_port "$out")"
    sleep 0.3
    base="$(rss_kb "$pid")"
    loaded="$(python3 - "$port" "$connections" "$pid" <<'PY'
import resource, socket, sys, time
port, count, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
clients = []
for i in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"idle")
    clients.append(s)
for s in clients:
    assert s.recv(16) == b"IDLE"
time.sleep(1.0)
with open(f"/proc/{pid}/status") as status:
    print(next(line.split()[1] for line in status if line.startswith("VmRSS")))
for s in clients:
    s.close()
PY
)"
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$out"
    per=$(python3 -c "print(f'{($loaded - $base) / $connections:.2f}')")
    printf '%-16s %12s %12s %12s %14s\n' "$server" "$connections" "$base" "$loaded" "$per"
done
