"""Prints the side-by-side table of one compare.sh run, with ratios against
the C server. Usage: python3 compare_table.py results/compare-*.jsonl"""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
by_scenario = {}
for row in rows:
    key = (row.get("connections"), row.get("size"), row.get("pipeline"))
    by_scenario.setdefault(key, {})[row["server"]] = row

header = (f"{'scenario':<22} {'server':<11} {'msgs/s':>10} {'p99 us':>8} {'cpu %':>6} {'rss MiB':>8} "
          f"{'msgs/cpu-s':>11} {'vs C':>6} {'p99 vs C':>9} {'errors':>6}")
print(header)
print("-" * len(header))
for (connections, size, pipeline), servers in by_scenario.items():
    c = servers.get("c", {})
    for name, row in servers.items():
        per_cpu = row.get("msgs_per_server_cpu_s") or 0
        ratio = per_cpu / c["msgs_per_server_cpu_s"] if c.get("msgs_per_server_cpu_s") else 0
        p99_ratio = row.get("p99_us", 0) / c["p99_us"] if c.get("p99_us") else 0
        errors = sum(row.get(k, 0) for k in ("mismatches", "resets", "unexpected_eofs", "failed_connects"))
        if row.get("exit_status"):
            errors = max(errors, 1)
        scenario = f"{connections}c x {size}B x p{pipeline}"
        print(f"{scenario:<22} {name:<11} {row.get('msgs_per_s', 0):>10.0f} {row.get('p99_us', 0):>8.0f} "
              f"{row.get('server_cpu_percent', 0):>6.1f} {row.get('server_rss_kb', 0) / 1024:>8.1f} "
              f"{per_cpu:>11.0f} {ratio:>6.2f} {p99_ratio:>9.2f} {errors:>6}")
    print()
