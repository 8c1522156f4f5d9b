# Shell functions shared by the scripts in Benchmarks/ (sourced, not run).

# Waits up to 5 s for a server to print its `listening on HOST:PORT (...)`
# line into FILE; prints the port, or nothing if the line never came.
listening_port() {
    local file="$1" port=""
    for _ in $(seq 100); do
        port="$(sed -n 's/^listening on [^ ]*:\([0-9]*\) .*/\1/p' "$file")"
        [ -n "$port" ] && break
        sleep 0.05
    done
    echo "$port"
}
