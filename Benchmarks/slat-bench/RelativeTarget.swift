/// A target on the ratio of two results of one run: thread scaling, or a
/// design against its baseline. Judged only when both results were measured.
struct RelativeTarget: Sendable {
    /// The faster configuration.
    let metric: Metric
    /// What it is compared with.
    let baseline: Metric
    /// The least `baseline ns/op ÷ metric ns/op` that passes.
    let minimumSpeedup: Double
    /// Where the target comes from, for the verdict line.
    let derivation: String
    /// The threads of the judged result.
    var threads = 2
    /// Whether the target applies on stage-2 formats too (else EPT only).
    var includesStageTwo = false

    /// The relative targets of the issues.
    static let all: [RelativeTarget] = [
        // Issue 4: 2 threads at least 1.7x one thread with the shared lock,
        // clearly ahead of the exclusive-lock baseline.
        RelativeTarget(metric: .faultThreads, baseline: .fault, minimumSpeedup: 1.7, derivation: "issue 4, 2 threads"),
        RelativeTarget(metric: .faultThreads, baseline: .faultThreadsExclusive, minimumSpeedup: 1.2,
                       derivation: "issue 4, 'clearly ahead' taken as 1.2x"),
        // Issue 6: the write pass after enabling dirty logging at least 2x
        // faster with the eager split than with fault-time splitting.
        RelativeTarget(metric: .eagerSplitWritePass, baseline: .faultSplitWritePass, minimumSpeedup: 2,
                       derivation: "issue 6", threads: 1, includesStageTwo: true),
    ]

    /// A `PASS`/`MISS` line for every relative target whose two results are
    /// in `results` (per EPT format; thread scaling only with 2 threads).
    static func verdictLines(_ results: [BenchResult]) -> [String] {
        var lines: [String] = []
        for target in all {
            for result in results where result.metric == target.metric && result.threads == target.threads
                && (target.includesStageTwo || !result.format.isStageTwo) {
                guard let base = results.first(where: { $0.metric == target.baseline && $0.format == result.format }),
                      result.nsPerOp > 0 else { continue }
                let speedup = base.nsPerOp / result.nsPerOp
                let verdict = speedup >= target.minimumSpeedup ? "PASS" : "MISS"
                lines.append("  \(verdict)  " + DecimalText.padRight(result.metric.rawValue, 23)
                    + DecimalText.padRight(result.format.rawValue, 8)
                    + "\(DecimalText.fixed(speedup, 2))x \(target.baseline.rawValue) "
                    + "(target >= \(DecimalText.fixed(target.minimumSpeedup, 1))x, \(target.derivation))")
            }
        }
        return lines
    }
}
