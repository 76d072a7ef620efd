/// Probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi,
/// Nagarakatte, "A Randomized Scheduler with Probabilistic Guarantees of
/// Finding Bugs", ASPLOS 2010) for one execution: every thread gets a
/// random distinct priority at least `depth`, `depth - 1` change points are
/// drawn among the first `stepEstimate` decisions, the highest-priority
/// enabled thread always runs, and at the i-th change point the running
/// thread drops to priority `depth - 1 - i`, below every initial one. A
/// bug of depth `d` is found with probability at least 1/(n·k^(d−1)).
public final class PCTPolicy: SchedulingPolicy {
    var priorities: [Int]
    var changePoints: [Int: Int] = [:]

    /// A policy for `threadCount` threads, bug depth `depth` (≥ 1) and an
    /// execution of about `stepEstimate` decisions, drawn from `seed`.
    public init(threadCount: Int, depth: Int, stepEstimate: Int, seed: UInt64) {
        // A test's own configuration: SLATSim is test support, never on a
        // VMM's path, and stopping here is that test failing at its setup.
        precondition(depth >= 1, "PCT depth must be at least 1")
        var random = SimulationRandom(seed: seed)
        var priorities = Array(depth..<(depth + threadCount))
        for index in stride(from: priorities.count - 1, to: 0, by: -1) {
            priorities.swapAt(index, random.below(index + 1))
        }
        self.priorities = priorities
        let range = max(stepEstimate, 1)
        for change in 0..<(depth - 1) {
            var point = 1 + random.below(range)
            while changePoints[point] != nil && changePoints.count < range { point = 1 + random.below(range) }
            changePoints[point] = depth - 1 - change
        }
    }

    /// Lowers the running thread's priority at a change point, then the
    /// enabled thread with the highest priority.
    public func choose(_ decision: SchedulingDecision) -> Int {
        if let lowered = changePoints[decision.index], let previous = decision.previous {
            priorities[previous] = lowered
        }
        var best = decision.enabled[0]
        for thread in decision.enabled where priorities[thread] > priorities[best] { best = thread }
        return best
    }
}
