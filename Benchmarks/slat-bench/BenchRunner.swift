/// Runs a ``RunOptions`` selection format by format and prints the report:
/// JSON lines as each format finishes, or the table at the end.
enum BenchRunner {
    /// Whether this binary was built without optimisation (SwiftPM defines
    /// `DEBUG` in debug builds).
    static var isDebugBuild: Bool {
        #if DEBUG
        true
        #else
        false
        #endif
    }

    /// Measures everything `options` selects.
    static func run(_ options: RunOptions) throws(BenchFailure) {
        var options = options
        if isDebugBuild {
            StandardError.writeLine("slat-bench: warning: this is a debug build; its figures are meaningless (use swift build -c release)")
        }
        let loadBefore = SystemLoad.current()
        if loadBefore.isSaturated {
            StandardError.writeLine("slat-bench: warning: \(loadBefore.description): other work fills the CPUs, so figures will be inflated")
        }
        if options.metrics.contains(.pfncache) {
            // Format-independent: measured once, with its own report.
            try PfnCacheWorkload.run(json: options.json, progress: Progress(enabled: !options.quiet), load: loadBefore)
            options.metrics.removeAll { $0 == .pfncache }
            if options.metrics.isEmpty { return }
            if !options.json { print("") }
        }
        var results: [BenchResult] = []
        for format in options.formats {
            let plan = options.plan(for: format)
            let formatResults = try format.accept(FormatRun(plan: plan, metrics: options.metrics),
                                                  coveringGuestEnd: plan.geometry.guestEnd)
            if options.json {
                for result in formatResults { print(JSONReport.line(result)) }
            }
            results += formatResults
        }
        guard !options.json else { return }
        let paired = try PairedRounds.measure(results, options: options, rounds: options.rounds)
        let loadAfter = SystemLoad.current().oneMinute.map { DecimalText.fixed($0, 2) } ?? "unknown"
        results.sort { ($0.metric.order, $0.format.order, $0.threads) < ($1.metric.order, $1.format.order, $1.threads) }
        print("slat-bench \(options.selectionName): \(isDebugBuild ? "DEBUG build (figures meaningless)" : "release build"), CLOCK_MONOTONIC")
        print("host: \(loadBefore.description) at start, \(loadAfter) at end")
        print("ns/op: median over the timed repeats of the operation alone (setup, one warm-up repeat and")
        print("verification untimed); spread: fastest-slowest repeat; counters: per repeat; every repeat verified.")
        if !paired.isEmpty {
            print("stage-2 ratio targets: fastest repeats of both sides over \(options.rounds) rounds that time them in turns (--rounds)")
        }
        print("")
        print(TableReport.render(results, paired: paired))
    }
}
