/// One timed repeat: how long the operation took and what it cost in
/// invalidations and table pages.
struct Sample: Sendable {
    /// Monotonic-clock nanoseconds the timed section took.
    let nanoseconds: UInt64
    /// Invalidations and table pages of the timed section.
    let counters: OperationCounters
}
