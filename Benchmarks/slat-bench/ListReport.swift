/// The `slat-bench list` output: workloads, the metrics they report, and formats.
enum ListReport {
    /// The listing.
    static func render() -> String {
        var lines = ["workloads:"]
        for workload in Workload.allCases {
            lines.append("  \(DecimalText.padRight(workload.rawValue, 11)) \(workload.summary)")
            lines.append("  \(String(repeating: " ", count: 11)) reports: \(workload.metrics.map(\.rawValue).joined(separator: ", "))")
        }
        lines.append("")
        lines.append("formats:")
        for format in BenchFormat.allCases {
            lines.append("  \(DecimalText.padRight(format.rawValue, 11)) \(format.summary)")
        }
        lines.append("")
        lines.append("targets (single thread, 4 KiB formats ept4, ept5, s2-4k):")
        for metric in Metric.allCases {
            if let target = PerformanceTarget.target(for: metric, format: .ept4, threads: 1) {
                lines.append("  \(DecimalText.padRight(metric.rawValue, 17)) <= \(DecimalText.fixed(target.limitNsPerOp, 1)) ns/\(metric.unit) (\(target.derivation))")
            }
        }
        return lines.joined(separator: "\n")
    }
}
