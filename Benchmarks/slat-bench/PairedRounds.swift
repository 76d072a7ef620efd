/// The stage-2 ratio targets judged from both sides measured in turns.
///
/// The main pass measures format after format, so the two sides of a
/// target such as `fault s2-4k ÷ fault ept4` are timed seconds apart. This
/// machine switches between two speeds about 1.5–2× apart, for spans from
/// tens of milliseconds to seconds (Docs/benchmarks.md, "Reading the
/// figures"), so such a ratio moves with the switch rather than with the
/// code. After the main pass, every metric some judged target needs is
/// measured again in `rounds` rounds: each round times
/// ``repeatsPerRound`` repeats (after their own warm-up) of every needed
/// metric, the two sides of each target one after the other — forward in
/// even rounds, backward in odd ones, so neither side is always first.
/// Both sides so get the same spans of the machine's states, and the
/// verdict judges the ratio of their fastest repeats over all the rounds
/// (the cost of each in the machine's fast state); the ratios within each
/// round are reported beside it. The table keeps the main pass's medians.
enum PairedRounds {
    /// Rounds unless `--rounds` says otherwise.
    static let defaultRounds = 9
    /// Timed repeats of each side per round.
    static let repeatsPerRound = 3

    /// One target's figures from the rounds.
    struct Ratios: Sendable {
        let target: StageTwoRatioTarget
        /// Per round, the ratio of the two sides' fastest repeats.
        let perRound: [Double]
        /// The fastest repeat of the judged side over all rounds, and of
        /// the reference, ns per operation.
        let fastest: Double
        let fastestReference: Double

        /// The judged ratio: fastest against fastest.
        var ratio: Double { fastest / fastestReference }

        /// The median of the rounds' ratios (mean of the middle two for an
        /// even count).
        var medianPerRound: Double {
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
        var fastest = Array(repeating: Double.infinity, count: targets.count)
        var fastestReference = Array(repeating: Double.infinity, count: targets.count)
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
                fastest[index] = min(fastest[index], result.minNsPerOp)
                fastestReference[index] = min(fastestReference[index], base.minNsPerOp)
            }
        }
        return targets.indices.map {
            Ratios(target: targets[$0], perRound: perRound[$0], fastest: fastest[$0], fastestReference: fastestReference[$0])
        }
    }
}
