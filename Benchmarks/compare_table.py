"""Prints the side-by-side table of one compare.sh run, with ratios against
the C server (or REFERENCE). Usage:
python3 compare_table.py results/compare-*.jsonl [REFERENCE]

With several rounds per scenario (compare.sh --repeat N), each figure is the
server's median over the rounds, and each ratio is the median of the ratios
taken round by round (a server against C in the same round, seconds apart),
with their range beside the p99 ratio, and from 8 rounds on the range of
the middle half of them (first to third quartile), which one odd round
cannot stretch."""
import json
import statistics
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
reference = sys.argv[2] if len(sys.argv) > 2 else "c"
ref_label = "C" if reference == "c" else reference
scenarios = {}
for row in rows:
    key = (row.get("connections"), row.get("size"), row.get("pipeline"))
    scenarios.setdefault(key, {}).setdefault(row["server"], []).append(row)


def median(runs, field):
    values = [run.get(field) for run in runs if run.get(field) is not None]
    return statistics.median(values) if values else 0


def round_ratios(runs, c_runs, field):
    """The ratio run/C for every round both ran in."""
    c_by_round = {run.get("round", 1): run for run in c_runs}
    ratios = []
    for run in runs:
        c = c_by_round.get(run.get("round", 1), {})
        if run.get(field) and c.get(field):
            ratios.append(run[field] / c[field])
    return ratios


def errors(run):
    count = sum(run.get(k, 0) for k in ("mismatches", "resets", "unexpected_eofs", "failed_connects", "unanswered"))
    return max(count, 1) if run.get("exit_status") else count


def quartiles(values):
    """The first and third quartiles."""
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


width = max([11] + [len(name) for servers in scenarios.values() for name in servers])
rounds = max((len(runs) for servers in scenarios.values() for runs in servers.values()), default=1)
header = (f"{'scenario':<22} {'server':<{width}} {'msgs/s':>10} {'p99 us':>8} {'cpu %':>6} {'rss MiB':>8} "
          f"{'msgs/cpu-s':>11} {'vs ' + ref_label:>6} {'p99 vs ' + ref_label:>9}" + (f" {'(range)':>11}" if rounds > 1 else "")
          + (f" {'(mid half)':>11}" if rounds >= 8 else "")
          + f" {'errors':>6}")
if rounds > 1:
    print(f"median of {rounds} rounds; ratios: median of the per-round ratios against {ref_label}")
print(header)
print("-" * len(header))
for (connections, size, pipeline), servers in scenarios.items():
    c_runs = servers.get(reference, [])
    for name, runs in servers.items():
        efficiency = round_ratios(runs, c_runs, "msgs_per_server_cpu_s")
        p99 = round_ratios(runs, c_runs, "p99_us")
        scenario = f"{connections}c x {size}B x p{pipeline}"
        line = (f"{scenario:<22} {name:<{width}} {median(runs, 'msgs_per_s'):>10.0f} {median(runs, 'p99_us'):>8.0f} "
                f"{median(runs, 'server_cpu_percent'):>6.1f} {median(runs, 'server_rss_kb') / 1024:>8.1f} "
                f"{median(runs, 'msgs_per_server_cpu_s'):>11.0f} "
                f"{statistics.median(efficiency) if efficiency else 0:>6.2f} "
                f"{statistics.median(p99) if p99 else 0:>9.2f}")
        if rounds > 1:
            spread = f"{min(p99):.2f}-{max(p99):.2f}" if p99 else ""
            line += f" {spread:>11}"
        if rounds >= 8:
            middle = "{:.2f}-{:.2f}".format(*quartiles(p99)) if len(p99) >= 2 else ""
            line += f" {middle:>11}"
        print(line + f" {sum(errors(run) for run in runs):>6}")
        # A multi-loop server: each loop's share of the connections and bytes, round by round.
        shares = [run for run in runs if run.get("per_loop_accepted")]
        if shares:
            accepted = ", ".join("/".join(str(n) for n in run["per_loop_accepted"]) for run in shares)
            total = [sum(run["per_loop_bytes_in"]) or 1 for run in shares]
            bytes_share = ", ".join("/".join(f"{100 * n / t:.0f}%" for n in run["per_loop_bytes_in"])
                                    for run, t in zip(shares, total))
            print(f"{'':<22} {'':<{width}} per loop, round by round: accepted {accepted}; bytes {bytes_share}")
    print()
