/// What one execution under a ``ControlledScheduler`` did.
public struct ExecutionRecord: Sendable, CustomStringConvertible {
    /// The thread chosen at each decision.
    public var choices: [Int]
    /// Preemptions among those choices.
    public var preemptions: Int
    /// Scheduling points passed (steps taken).
    public var steps: Int
    /// The first failure: a scenario oracle, a thread that threw, a
    /// deadlock, a livelock past the step bound, or a thread blocked
    /// outside the scheduler. `nil` when the execution passed.
    public var failure: String?
    /// Whether every thread ran to its end (false after an abort: its
    /// threads are left parked for good).
    public var completed: Bool

    /// The schedule that replays this execution.
    public var schedule: Schedule { Schedule(choices: choices) }

    /// The failure (or "passed"), steps, preemptions and the schedule.
    public var description: String {
        "\(failure ?? "passed"); \(steps) steps, \(preemptions) preemptions; schedule \(schedule)"
    }
}
