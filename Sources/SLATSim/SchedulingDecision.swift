/// One choice a ``ControlledScheduler`` asks its ``SchedulingPolicy`` for:
/// which enabled thread takes the next step.
public struct SchedulingDecision: Sendable, Hashable {
    /// The decision's number within the execution (0 = which thread starts).
    public let index: Int
    /// The threads that may run, ascending; never empty.
    public let enabled: [Int]
    /// The thread that took the last step (`nil` for the first decision).
    public let previous: Int?

    /// A decision among `enabled` after `previous`'s step.
    public init(index: Int, enabled: [Int], previous: Int?) {
        self.index = index
        self.enabled = enabled
        self.previous = previous
    }

    /// Whether the thread that took the last step may go on: choosing any
    /// other thread is then a *preemption* (CHESS's context-switch bound
    /// counts only those).
    public var previousIsEnabled: Bool {
        guard let previous else { return false }
        return enabled.contains(previous)
    }

    /// Whether choosing `thread` here is a preemption.
    public func isPreemption(choosing thread: Int) -> Bool {
        previousIsEnabled && thread != previous
    }

    /// The non-preemptive choice: the previous thread if it may go on, else
    /// the lowest enabled thread.
    public var nonPreemptiveChoice: Int {
        if previousIsEnabled, let previous { return previous }
        return enabled[0]
    }
}

/// Chooses the thread that runs at each ``SchedulingDecision`` of one
/// execution. Called with the scheduler's state locked, from whichever
/// thread yielded; one decision at a time.
public protocol SchedulingPolicy: AnyObject {
    /// One of `decision.enabled`.
    func choose(_ decision: SchedulingDecision) -> Int
}
