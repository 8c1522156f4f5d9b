#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ (with AddressSanitizer) and runs each
# for SECONDS (default 60) from its committed corpus in Fuzz/Corpus/. A crash
# leaves its input in Fuzz/crashes/ and fails the script; turn each into a
# regression test named after what broke.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="/opt/swift/usr/bin:$PATH"
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzSelector FuzzOutboundBuffer FuzzReadPath)

cd "$root/Fuzz"
# One combined -sanitize=fuzzer,address for swiftc: given as two options
# (what `--sanitize fuzzer --sanitize address` passes), the last one wins and
# the Swift code gets no coverage instrumentation, so libFuzzer runs blind.
# `--sanitize fuzzer` stays for SwiftPM, which then builds the targets
# without a `main` of their own (libFuzzer provides it).
flags=(-c debug --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=address)
log="$(mktemp)"
if ! swift build "${flags[@]}" >"$log" 2>&1; then
    # A failed build must fail the run, never fuzz stale binaries.
    grep -E "error" "$log" | head -20
    rm -f "$log"
    exit 1
fi
grep -E "Build complete" "$log" || true
rm -f "$log"
bin="$(swift build "${flags[@]}" --show-bin-path)"
mkdir -p crashes
status=0
for target in "${targets[@]}"; do
    corpus="Corpus/$target"
    mkdir -p "$corpus"
    work="$(mktemp -d)"
    cp "$corpus"/* "$work"/ 2>/dev/null || true
    echo "== $target for ${seconds}s (corpus: $(ls "$corpus" | wc -l) inputs)"
    if ! "$bin/$target" "$work" -max_total_time="$seconds" -rss_limit_mb=4096 -artifact_prefix="crashes/$target-" \
        -print_final_stats=1 2>"$work.log"; then
        status=1
        tail -30 "$work.log"
    fi
    grep -E "^stat::number_of_executed_units|^stat::new_units_added|#[0-9]+[[:space:]]+DONE" "$work.log" | tr '\n' ' '
    echo
    rm -rf "$work" "$work.log"
done
exit $status
