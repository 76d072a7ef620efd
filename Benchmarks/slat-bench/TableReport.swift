/// The human-readable report: one table of every result, then a verdict
/// line for each result that has a target.
enum TableReport {
    /// The table and verdict lines for `results`; the stage-2 ratio
    /// targets in `paired` are judged from their rounds.
    static func render(_ results: [BenchResult], paired: [PairedRounds.Ratios] = []) -> String {
        let header = ["workload", "format", "threads", "size", "ns/op", "spread (min-max)", "ops/s", "runs",
                      "TLB addr/range/ctx", "tables alloc/freed"]
        let rightAligned: Set<Int> = [2, 4, 6, 7]
        var rows: [[String]] = [header]
        for result in results {
            let counters = result.counters
            rows.append([
                result.metric.rawValue,
                result.format.rawValue,
                "\(result.threads)",
                ByteSize.format(result.size),
                DecimalText.fixed(result.nsPerOp, 3),
                DecimalText.fixed(result.minNsPerOp, 3) + "-" + DecimalText.fixed(result.maxNsPerOp, 3),
                DecimalText.scaled(result.opsPerSecond),
                "\(result.repeats)",
                counters.measured ? "\(counters.tlbAddresses)/\(counters.tlbRanges)/\(counters.tlbContexts)" : "-",
                counters.measured ? "\(counters.tablesAllocated)/\(counters.tablesFreed)" : "-",
            ])
        }
        var widths = Array(repeating: 0, count: header.count)
        for row in rows {
            for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) }
        }
        var lines: [String] = []
        for (index, row) in rows.enumerated() {
            var cells: [String] = []
            for (column, cell) in row.enumerated() {
                cells.append(rightAligned.contains(column)
                    ? DecimalText.padLeft(cell, widths[column]) : DecimalText.padRight(cell, widths[column]))
            }
            lines.append(cells.joined(separator: "  "))
            if index == 0 { lines.append(String(repeating: "-", count: lines[0].count)) }
        }
        let verdicts = results.compactMap(verdictLine) + RelativeTarget.verdictLines(results)
            + StageTwoRatioTarget.verdictLines(results, paired: paired)
        if !verdicts.isEmpty {
            lines.append("")
            lines.append("targets:")
            lines += verdicts
        }
        return lines.map { line in
            var trimmed = Substring(line)
            while trimmed.last == " " { trimmed = trimmed.dropLast() }
            return String(trimmed)
        }.joined(separator: "\n")
    }

    /// `PASS`/`MISS` for a result with a target, with the figure and by how
    /// much it misses; `nil` without a target.
    static func verdictLine(_ result: BenchResult) -> String? {
        guard let target = result.target else { return nil }
        let unit = result.metric.unit
        let figure = DecimalText.fixed(result.nsPerOp, 3)
        let limit = DecimalText.fixed(target.limitNsPerOp, 1)
        var line = "  \(target.passes(result.nsPerOp) ? "PASS" : "MISS")  "
            + DecimalText.padRight(result.metric.rawValue, 23) + DecimalText.padRight(result.format.rawValue, 8)
            + "\(figure) ns/\(unit) (target <= \(limit) ns/\(unit), \(target.derivation))"
        if !target.passes(result.nsPerOp) {
            line += ": \(DecimalText.fixed(result.nsPerOp / target.limitNsPerOp, 2))x the target"
        }
        return line
    }
}
