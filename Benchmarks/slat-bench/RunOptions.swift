import SLAT

/// What a benchmark run measures and how it reports; the default value is
/// the default suite.
struct RunOptions: Sendable {
    /// Metrics to measure, in report order.
    var metrics: [Metric] = Metric.allCases
    /// Formats to measure them on, in report order.
    var formats: [BenchFormat] = BenchFormat.allCases
    /// Bytes mapped (`--size`).
    var size: UInt64 = 1 << 30
    /// Repeats per metric (`--repeat`); `nil` for each format's default.
    var repeats: Int?
    /// vCPU threads of the multi-threaded metrics (`--threads`); each of
    /// them also runs with one thread as its own metric.
    var threads = 2
    /// Paired rounds for the stage-2 ratio targets (`--rounds`,
    /// ``PairedRounds``); 0 judges the main pass's medians.
    var rounds = PairedRounds.defaultRounds
    /// EPT dirty-log mode (`--dirty-mode wp|dbit`); `nil` for the format's default.
    var dirtyMode: DirtyLogMode? = nil
    /// Print one JSON object per result instead of the table (`--json`).
    var json = false
    /// Suppress progress lines on standard error (`--quiet`).
    var quiet = false
    /// What the report calls the selection: `default suite`, or
    /// `run <name>` with the workload or metric named on the command line.
    var selectionName = "default suite"

    /// The plan for `format`.
    func plan(for format: BenchFormat) -> FormatPlan {
        FormatPlan(
            format: format,
            geometry: MappingGeometry(size: size, pageSize: format.pageSize),
            repeats: repeats ?? format.defaultRepeats,
            lookups: FormatPlan.defaultLookups,
            progress: Progress(enabled: !quiet),
            threads: threads,
            dirtyMode: dirtyMode)
    }
}
