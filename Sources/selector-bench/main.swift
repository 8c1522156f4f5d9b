// selector-bench: what one `select(timeout: .zero)` costs with each backend
// as the number of watched descriptors grows, beside the bare syscall.
//
// The lesson's claim, measured: select(2) and poll(2) pay for every watched
// descriptor on every call (and select stops at descriptor 1024), while
// epoll pays for the ready ones only. See scripts/selector-scaling.sh.
import Syscalls

let options: Options
do {
    options = try Options.parse(Array(CommandLine.arguments.dropFirst()))
} catch .helpRequested {
    print(Options.usage)
    system_exit(0)
} catch .invalid(let message) {
    standardError("selector-bench: \(message)\n\n\(Options.usage)")
    system_exit(2)
}

do {
    let (limit, warning) = try DescriptorLimit.raise()
    if let warning { standardError("selector-bench: \(warning)") }
    standardError(
        "descriptor limit: soft \(limit.soft), hard \(limit.hard); \(limit.firstFree) already open, "
            + "\(DescriptorLimit.reserve) epolls per point: N up to \(limit.reachable) is reachable"
    )
    let plan = TimingPlan(
        batches: options.batches,
        callsPerBatch: options.repetitions,
        budgetNanoseconds: Int64(options.budgetMilliseconds) * 1_000_000
    )
    let points = try Sweep(options: options, limit: limit, plan: plan).run()
    let report = Report(points: points, options: options, limit: limit)
    print(report.table)
    print("")
    for line in report.checks { print(line) }
    if let path = options.csvPath { try writeFile(path, report.csv) }
    if let path = options.jsonPath { try writeFile(path, report.json) }
} catch {
    standardError("selector-bench: \(error)")
    system_exit(1)
}
