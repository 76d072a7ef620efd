/// A target on how a stage-2 result compares with a reference result of the
/// same run: the stage-2 fault, permission-fault, shared-merge and split
/// paths within a small factor of the x86 ones or of their stage-2
/// baselines. Judged only when both results were measured, from
/// ``PairedRounds`` that time both sides in turns.
struct StageTwoRatioTarget: Sendable {
    /// The judged result.
    let metric: Metric
    let format: BenchFormat
    var threads = 1
    /// What it is compared with.
    let reference: Metric
    let referenceFormat: BenchFormat
    /// The largest `metric ns/op ÷ reference ns/op` that passes.
    let maximumRatio: Double
    /// Where the target comes from, for the verdict line.
    let derivation: String

    /// The stage-2 ratio targets.
    static let all: [StageTwoRatioTarget] = [
        StageTwoRatioTarget(metric: .fault, format: .stageTwo4K, reference: .fault, referenceFormat: .ept4,
                            maximumRatio: 1.3, derivation: "stage 2 at EPT speed"),
        StageTwoRatioTarget(metric: .fault, format: .stageTwo16K, reference: .fault, referenceFormat: .ept4,
                            maximumRatio: 1.5, derivation: "stage 2 at EPT speed, larger granule"),
        StageTwoRatioTarget(metric: .fault, format: .stageTwo64K, reference: .fault, referenceFormat: .ept4,
                            maximumRatio: 1.5, derivation: "stage 2 at EPT speed, larger granule"),
        StageTwoRatioTarget(metric: .eagerSplitWritePass, format: .stageTwo4K, reference: .eagerSplitWritePass,
                            referenceFormat: .ept4, maximumRatio: 1.5, derivation: "permission faults at EPT speed"),
        StageTwoRatioTarget(metric: .eagerSplitWritePass, format: .stageTwo4K, reference: .faultSplitWritePass,
                            referenceFormat: .stageTwo4K, maximumRatio: 0.5,
                            derivation: "eager split at least 2x the fault-time split"),
        StageTwoRatioTarget(metric: .mergeShared, format: .stageTwo4K, reference: .merge, referenceFormat: .stageTwo4K,
                            maximumRatio: 3, derivation: "shared merge within 3x the exclusive one"),
        StageTwoRatioTarget(metric: .split, format: .stageTwo4K, reference: .splitEager, referenceFormat: .stageTwo4K,
                            maximumRatio: 3, derivation: "break-before-make split within 3x the eager one"),
        // At least 90% of the throughput of a VM per thread.
        StageTwoRatioTarget(metric: .faultThreads, format: .stageTwo4K, threads: 2, reference: .faultThreadsSeparateVMs,
                            referenceFormat: .stageTwo4K, maximumRatio: 1 / 0.9,
                            derivation: ">= 90% of a VM per thread"),
    ]

    /// The ratio as printed: `<= 1.3x fault ept4`.
    var limitText: String {
        "<= \(DecimalText.fixed(maximumRatio, 2))x \(reference.rawValue) \(referenceFormat.rawValue)"
    }

    /// A `PASS`/`MISS` line for every target whose two results are in
    /// `results`: judged from its rounds when `paired` has them (with the
    /// rounds' own ratios), else from the two medians of `results`.
    static func verdictLines(_ results: [BenchResult], paired: [PairedRounds.Ratios] = []) -> [String] {
        var lines: [String] = []
        for target in all {
            guard let result = results.first(where: {
                      $0.metric == target.metric && $0.format == target.format && $0.threads == target.threads }),
                  let base = results.first(where: { $0.metric == target.reference && $0.format == target.referenceFormat }),
                  base.nsPerOp > 0 else { continue }
            let rounds = paired.first { $0.target.matches(target) }
            let ratio = rounds?.ratio ?? result.nsPerOp / base.nsPerOp
            var basis = ""
            if let rounds, let low = rounds.perRound.min(), let high = rounds.perRound.max() {
                basis = "; fastest of \(rounds.perRound.count * PairedRounds.repeatsPerRound) repeats each in "
                    + "\(rounds.perRound.count) paired rounds, \(DecimalText.fixed(rounds.fastest, 1)) against "
                    + "\(DecimalText.fixed(rounds.fastestReference, 1)) ns; per round \(DecimalText.fixed(low, 2))-"
                    + "\(DecimalText.fixed(high, 2))x, median \(DecimalText.fixed(rounds.medianPerRound, 2))x"
            }
            let verdict = ratio <= target.maximumRatio ? "PASS" : "MISS"
            let name = result.metric.rawValue
            lines.append("  \(verdict)  " + DecimalText.padRight(name, max(23, name.count + 1))
                + DecimalText.padRight(result.format.rawValue, 8)
                + "\(DecimalText.fixed(ratio, 2))x \(target.reference.rawValue) \(target.referenceFormat.rawValue) "
                + "(target \(target.limitText), \(target.derivation)\(basis))")
        }
        return lines
    }

    /// Whether `other` is this target (the same two sides and limit).
    func matches(_ other: StageTwoRatioTarget) -> Bool {
        metric == other.metric && format == other.format && threads == other.threads && reference == other.reference
            && referenceFormat == other.referenceFormat && maximumRatio == other.maximumRatio
    }
}
