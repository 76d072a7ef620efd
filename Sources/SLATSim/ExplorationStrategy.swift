/// How an ``Explorer`` chooses the schedules it runs.
public enum ExplorationStrategy: Sendable, Hashable, CustomStringConvertible {
    /// Every schedule with at most `preemptionBound` preemptions, depth first
    /// (``BoundedExhaustiveSearch``), until exhausted or out of budget.
    case exhaustive(preemptionBound: Int)
    /// PCT with bug depth `depth` (``PCTPolicy``); execution `i` draws from
    /// `SimulationRandom.derivedSeed(seed, stream: i)`.
    case pct(depth: Int, seed: UInt64)
    /// Uniformly random choices (``RandomSchedulingPolicy``), seeded per
    /// execution as for PCT.
    case random(seed: UInt64)

    /// The strategy as it is written in Swift, with its bound or seed.
    public var description: String {
        switch self {
        case .exhaustive(let bound): "exhaustive(preemptionBound: \(bound))"
        case .pct(let depth, let seed): "pct(depth: \(depth), seed: \(seed))"
        case .random(let seed): "random(seed: \(seed))"
        }
    }
}

/// How much an ``Explorer`` may run.
public struct ExplorationBudget: Sendable, Hashable {
    /// At most this many executions.
    public var executions: Int
    /// At most this many seconds (checked between executions).
    public var seconds: Double

    /// A budget of `executions` executions and `seconds` seconds.
    public init(executions: Int, seconds: Double) {
        self.executions = executions
        self.seconds = seconds
    }
}
