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
        lines.append("targets (one thread unless said):")
        for metric in Metric.allCases {
            for format in BenchFormat.allCases {
                if let target = PerformanceTarget.target(for: metric, format: format, threads: 1) {
                    lines.append("  \(DecimalText.padRight(metric.rawValue, 17)) \(DecimalText.padRight(format.rawValue, 7)) <= \(DecimalText.fixed(target.limitNsPerOp, 1)) ns/\(metric.unit) (\(target.derivation))")
                }
            }
        }
        for target in RelativeTarget.all where target.note == nil {
            lines.append("  \(DecimalText.padRight(target.metric.rawValue, 17)) EPT     >= \(DecimalText.fixed(target.minimumSpeedup, 1))x \(target.baseline.rawValue) (\(target.derivation))")
            if let note = target.stageTwoNote {
                lines.append("  \(DecimalText.padRight(target.metric.rawValue, 17)) stage 2 ratio reported, \(note)")
            }
        }
        for target in StageTwoRatioTarget.all {
            let threads = target.threads == 1 ? "" : " (\(target.threads) threads)"
            lines.append("  \(DecimalText.padRight(target.metric.rawValue, 17)) \(DecimalText.padRight(target.format.rawValue, 7)) \(target.limitText)\(threads) (\(target.derivation))")
        }
        return lines.joined(separator: "\n")
    }
}
