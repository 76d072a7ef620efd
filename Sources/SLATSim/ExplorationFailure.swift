/// A failing schedule found by an ``Explorer``, shrunk.
public struct ExplorationFailure: Sendable, CustomStringConvertible {
    /// The scenario's name.
    public var scenario: String
    /// The strategy that found it.
    public var strategy: ExplorationStrategy
    /// Which execution of the strategy failed (0-based): with the strategy's
    /// seed it reproduces the original failing schedule.
    public var execution: Int
    /// The failure of the original execution.
    public var originalMessage: String
    /// The original schedule.
    public var originalSchedule: Schedule
    /// Preemptions of the original schedule.
    public var originalPreemptions: Int
    /// The failure of the shrunk execution.
    public var message: String
    /// The shrunk schedule: replay it with ``Explorer/replay(_:schedule:removing:)``.
    public var schedule: Schedule
    /// Preemptions of the shrunk schedule.
    public var preemptions: Int
    /// Steps removed by shrinking, as (thread, step index in the original
    /// scenario, name), in the order they were removed.
    public var removedSteps: [RemovedStep]
    /// What the remaining operations are, per thread.
    public var remainingSteps: [[String]]

    /// One scenario step shrinking removed.
    public struct RemovedStep: Sendable, Hashable {
        /// The thread.
        public var thread: Int
        /// The step's index in the thread's list at the time it was removed.
        public var index: Int
        /// The step's name.
        public var name: String
    }

    /// The failure, how it was found, both schedules, the remaining and
    /// removed steps, and the call that replays it.
    public var description: String {
        var lines = [
            "exploration of \(scenario) failed: \(message)",
            "  found by \(strategy), execution \(execution): \(originalMessage)",
            "  original schedule (\(originalPreemptions) preemptions): \(originalSchedule)",
            "  shrunk schedule (\(preemptions) preemptions): \(schedule)",
        ]
        for (thread, steps) in remainingSteps.enumerated() {
            lines.append("  thread \(thread): \(steps.joined(separator: "; "))")
        }
        if !removedSteps.isEmpty {
            lines.append("  removed: " + removedSteps.map { "thread \($0.thread) step \($0.index) (\($0.name))" }
                .joined(separator: ", "))
        }
        let removals = removedSteps.map { "(\($0.thread), \($0.index))" }.joined(separator: ", ")
        lines.append("  replay: Explorer.replay(scenario, schedule: Schedule(\"\(schedule)\")!, removing: [\(removals)])")
        return lines.joined(separator: "\n")
    }
}

/// What an ``Explorer`` run did.
public struct ExplorationOutcome: Sendable, CustomStringConvertible {
    /// The scenario's name.
    public var scenario: String
    /// The strategy.
    public var strategy: ExplorationStrategy
    /// Executions run (before shrinking).
    public var executions: Int
    /// Whether an exhaustive search ran out of schedules (every schedule
    /// within its bound was run).
    public var exhausted: Bool
    /// Seconds spent exploring (shrinking not included).
    public var seconds: Double
    /// Seconds until the first failing execution ended, if any.
    public var secondsToFailure: Double?
    /// The failure, shrunk; `nil` when every execution passed.
    public var failure: ExplorationFailure?
    /// The most scheduling steps of any execution.
    public var maximumSteps: Int

    /// Schedules run, time, and the failure if any.
    public var description: String {
        let head = "\(scenario) under \(strategy): \(executions) schedules\(exhausted ? " (exhausted)" : "") in "
            + String(format: "%.2f s", seconds) + ", up to \(maximumSteps) steps each"
        guard let failure else { return head + ", no failure" }
        return head + String(format: ", failure after %.2f s\n", secondsToFailure ?? 0) + failure.description
    }
}
