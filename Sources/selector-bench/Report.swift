import Selectors

/// The sweep's results as an aligned table, CSV, JSON, and the scaling checks.
struct Report {
    let points: [Point]
    let options: Options
    let limit: DescriptorLimit

    /// One line per point; a skipped point says why in place of its figures.
    var table: String {
        let header = ["backend", "watched", "ready", "ns/call", "raw ns/call", "overhead"]
        let rows: [[String]] = points.map { point in
            let lead = [point.backend.rawValue, "\(point.watched)", "\(point.ready)"]
            switch point.outcome {
            case .measured(let library, let raw):
                return lead + [
                    fixed(library.median), fixed(raw.median), fixed(library.median / raw.median, digits: 2) + "x",
                ]
            case .skipped(let reason):
                return lead + ["skipped: " + reason]
            }
        }
        var widths = header.map(\.count)
        for row in rows where row.count == header.count {
            for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) }
        }
        // Left-aligned names, right-aligned numbers; a skip reason runs on.
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                guard column < widths.count, column < 3 || cells.count == widths.count else { return cell }
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 ? cell + padding : padding + cell
            }.joined(separator: "  ")
        }
        let rule = widths.map { String(repeating: "-", count: $0) }
        return ([line(header), line(rule)] + rows.map(line)).joined(separator: "\n")
    }

    /// `backend,watched,ready,ns_per_call,raw_ns_per_call`, measured points only.
    var csv: String {
        var lines = ["backend,watched,ready,ns_per_call,raw_ns_per_call"]
        for point in points {
            guard case .measured(let library, let raw) = point.outcome else { continue }
            lines.append(
                "\(point.backend),\(point.watched),\(point.ready),\(fixed(library.median)),\(fixed(raw.median))"
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Every point, skipped ones with their reason, with quartiles and batch sizes.
    var json: String {
        let entries = points.map { point in
            var fields = [
                "\"backend\": \"\(point.backend)\"", "\"watched\": \(point.watched)", "\"ready\": \(point.ready)",
            ]
            switch point.outcome {
            case .measured(let library, let raw):
                fields += [
                    "\"ns_per_call\": \(fixed(library.median))",
                    "\"raw_ns_per_call\": \(fixed(raw.median))",
                    "\"overhead\": \(fixed(library.median / raw.median, digits: 3))",
                    "\"ns_per_call_quartiles\": [\(fixed(library.lowerQuartile)), \(fixed(library.upperQuartile))]",
                    "\"raw_ns_per_call_quartiles\": [\(fixed(raw.lowerQuartile)), \(fixed(raw.upperQuartile))]",
                    "\"calls_per_batch\": \(library.callsPerBatch)",
                    "\"raw_calls_per_batch\": \(raw.callsPerBatch)",
                ]
            case .skipped(let reason):
                fields.append("\"skipped\": \(jsonString(reason))")
            }
            return "    {" + fields.joined(separator: ", ") + "}"
        }
        return """
            {
              "batches": \(options.batches),
              "descriptor_limit": \(limit.soft),
              "points": [
            \(entries.joined(separator: ",\n"))
              ]
            }

            """
    }

    /// The lesson's claims, checked on the figures: epoll's cost stays flat
    /// as N grows and close to the bare syscall; poll's and select's grow.
    var checks: [String] {
        var lines: [String] = []
        if let small = median(.epoll, 10), let large = median(.epoll, 10000) {
            lines.append(verdict("EpollSelector.select at N=10000 / at N=10", large / small, limit: 1.5))
        }
        if case .measured(let library, let raw)? = outcome(.epoll, 10000) {
            lines.append(
                verdict("EpollSelector.select / raw epoll_wait at N=10000", library.median / raw.median, limit: 1.3))
        }
        for kind in [SelectorKind.poll, .select] {
            let measured = points.filter { $0.backend == kind }.compactMap { point -> (Int, Double)? in
                guard case .measured(let library, _) = point.outcome else { return nil }
                return (point.watched, library.median)
            }.sorted { $0.0 < $1.0 }
            guard let first = measured.first, let last = measured.last, first.0 < last.0 else { continue }
            let ratio = last.1 / first.1
            let trend = ratio >= 2 ? "grows with N" : "does NOT grow with N"
            let name = kind == .poll ? "PollSelector" : "SelectSelector"
            lines.append("\(name).select at N=\(last.0) / at N=\(first.0): \(fixed(ratio, digits: 1))x (\(trend))")
        }
        return lines
    }

    private func outcome(_ kind: SelectorKind, _ watched: Int) -> Outcome? {
        points.first { $0.backend == kind && $0.watched == watched }?.outcome
    }

    private func median(_ kind: SelectorKind, _ watched: Int) -> Double? {
        guard case .measured(let library, _)? = outcome(kind, watched) else { return nil }
        return library.median
    }

    private func verdict(_ what: String, _ ratio: Double, limit: Double) -> String {
        let met = ratio <= limit ? "met" : "MISSED"
        return "\(what): \(fixed(ratio, digits: 2))x (target <= \(fixed(limit, digits: 2))x) \(met)"
    }
}

/// `text` as a JSON string literal.
private func jsonString(_ text: String) -> String {
    var escaped = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": escaped += "\\\""
        case "\\": escaped += "\\\\"
        case "\n": escaped += "\\n"
        case _ where scalar.value < 0x20:
            escaped += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
        default: escaped.unicodeScalars.append(scalar)
        }
    }
    return escaped + "\""
}
