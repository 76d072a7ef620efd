import SLAT

/// What to run on one format: the mapping, how many repeats, and how many
/// lookups the translate workload makes per repeat.
struct FormatPlan: Sendable {
    /// Lookups per translate repeat: 2 Mi, about 20 ms at the target.
    static let defaultLookups = 1 << 21

    /// The format, by name.
    let format: BenchFormat
    /// The mapping the workloads build and time.
    let geometry: MappingGeometry
    /// Timed repeats per metric.
    var repeats: Int
    /// Lookups per translate repeat.
    let lookups: Int
    /// Where progress lines go.
    var progress: Progress
    /// vCPU threads of the multi-threaded metrics (`--threads`, default 2).
    var threads = 2
    /// EPT dirty-log mode (`--dirty-mode`); `nil` for the format's default
    /// (dirty bits with A/D flags on, write protection otherwise).
    var dirtyMode: DirtyLogMode? = nil
}
