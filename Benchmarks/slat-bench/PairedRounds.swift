/// The stage-2 ratio targets judged from both sides measured back to back.
///
/// The main pass measures format after format, so the two sides of a
/// target such as `fault s2-4k ÷ fault ept4` are timed seconds apart. This
/// machine switches between two speeds about 1.5–2× apart that last for
/// seconds (Docs/benchmarks.md, "Reading the figures"), so such a ratio
/// moves with the switch rather than with the code. After the main pass,
/// every metric some judged target needs is measured again in `rounds`
/// rounds: each round times ``repeatsPerRound`` repeats (after their own
/// warm-up) of every needed metric, format after format — forward in even
/// rounds, backward in odd ones, so neither side is always first — and
/// each target's ratio is taken within the round, of the two sides'
/// fastest repeats (a scheduler tick that lands in one repeat of about
/// 10 ms adds a third to it). The verdict judges the median of the rounds'
/// ratios; the table keeps the main pass's medians.
enum PairedRounds {
    /// Rounds unless `--rounds` says otherwise.
    static let defaultRounds = 9
    /// Timed repeats of each side per round; the fastest counts.
    static let repeatsPerRound = 3

    /// One target's ratios, one per round.
    struct Ratios: Sendable {
        let target: StageTwoRatioTarget
        let perRound: [Double]

        /// The median of the rounds' ratios (mean of the middle two for an
        /// even count).
        var median: Double {
            let sorted = perRound.sorted()
            let middle = sorted.count / 2
            return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        }
    }

    /// The targets whose two sides are both in `results`: the ones the
    /// verdict lines judge.
    static func judged(_ results: [BenchResult]) -> [StageTwoRatioTarget] {
        StageTwoRatioTarget.all.filter { target in
            results.contains { $0.metric == target.metric && $0.format == target.format && $0.threads == target.threads }
                && results.contains { $0.metric == target.reference && $0.format == target.referenceFormat }
        }
    }

    /// Measures the rounds for the targets judged from `results`, with the
    /// run's mapping size and threads from `options`. Empty when `rounds`
    /// is 0 or no target is judged.
    static func measure(_ results: [BenchResult], options: RunOptions, rounds: Int) throws(BenchFailure) -> [Ratios] {
        let targets = judged(results)
        guard rounds > 0, !targets.isEmpty else { return [] }
        // The metrics each format needs, in the main pass's format order.
        var needed: [(format: BenchFormat, metrics: [Metric])] = []
        func need(_ metric: Metric, on format: BenchFormat) {
            if let index = needed.firstIndex(where: { $0.format == format }) {
                if !needed[index].metrics.contains(metric) { needed[index].metrics.append(metric) }
            } else {
                needed.append((format, [metric]))
            }
        }
        for target in targets {
            need(target.metric, on: target.format)
            need(target.reference, on: target.referenceFormat)
        }
        needed.sort { $0.format.order < $1.format.order }
        let progress = Progress(enabled: !options.quiet)
        var perRound: [[Double]] = Array(repeating: [], count: targets.count)
        for round in 0..<rounds {
            progress.note("paired round \(round + 1) of \(rounds): \(needed.map(\.format.rawValue).joined(separator: ", "))")
            var measured: [BenchResult] = []
            for (format, metrics) in round % 2 == 0 ? needed : needed.reversed() {
                var plan = options.plan(for: format)
                plan.repeats = repeatsPerRound
                plan.progress = Progress(enabled: false)
                measured += try format.accept(FormatRun(plan: plan, metrics: metrics), coveringGuestEnd: plan.geometry.guestEnd)
            }
            for (index, target) in targets.enumerated() {
                guard let result = measured.first(where: {
                          $0.metric == target.metric && $0.format == target.format && $0.threads == target.threads }),
                      let base = measured.first(where: { $0.metric == target.reference && $0.format == target.referenceFormat }),
                      base.minNsPerOp > 0 else {
                    throw .verification("paired round \(round + 1): \(target.metric.rawValue) \(target.format.rawValue) or its reference was not measured")
                }
                perRound[index].append(result.minNsPerOp / base.minNsPerOp)
            }
        }
        return zip(targets, perRound).map { Ratios(target: $0, perRound: $1) }
    }
}
