/// Stateless depth-first search of every schedule with at most
/// `preemptionBound` preemptions (CHESS's iterative context bounding:
/// Musuvathi, Qadeer, "Iterative Context Bounding for Systematic Testing of
/// Multithreaded Programs", PLDI 2007). Switching away from a thread that
/// blocked, spun or finished is free; switching away from one that could
/// go on costs one preemption.
///
/// Use it as the policy of one execution after another: after each,
/// ``advance()`` sets up the next unexplored schedule and returns false
/// once every schedule within the bound has been run. The scenario must be
/// deterministic for a given schedule.
public final class BoundedExhaustiveSearch: SchedulingPolicy {
    struct Node {
        var decision: SchedulingDecision
        var chosen: Int
        var tried: Set<Int>
        /// Preemptions on the path before this decision.
        var preemptionsBefore: Int
    }

    /// The most preemptions a schedule may have.
    public let preemptionBound: Int
    var path: [Node] = []
    var replayDepth = 0
    var depth = 0
    /// Decisions at which the scenario offered other threads than when the
    /// same prefix was first run (nondeterminism; should stay 0).
    public private(set) var divergences = 0

    /// A search with at most `preemptionBound` preemptions per schedule.
    public init(preemptionBound: Int) { self.preemptionBound = preemptionBound }

    /// Replays the prefix chosen by ``advance()``, then the non-preemptive
    /// choice, recording each decision for the next backtrack.
    public func choose(_ decision: SchedulingDecision) -> Int {
        defer { depth += 1 }
        if depth < replayDepth {
            let node = path[depth]
            if node.decision.enabled != decision.enabled { divergences += 1 }
            if decision.enabled.contains(node.chosen) { return node.chosen }
            // Diverged: continue from here as a fresh node.
            path.removeSubrange(depth...)
            replayDepth = depth
        }
        let before = path.last.map { $0.preemptionsBefore + ($0.decision.isPreemption(choosing: $0.chosen) ? 1 : 0) } ?? 0
        let choice = decision.nonPreemptiveChoice
        path.append(Node(decision: decision, chosen: choice, tried: [choice], preemptionsBefore: before))
        return choice
    }

    /// Prepares the next schedule; false when the bounded space is exhausted.
    public func advance() -> Bool {
        if path.count > depth { path.removeSubrange(depth...) }
        depth = 0
        var index = path.count - 1
        while index >= 0 {
            let node = path[index]
            for candidate in node.decision.enabled where !node.tried.contains(candidate) {
                let cost = node.preemptionsBefore + (node.decision.isPreemption(choosing: candidate) ? 1 : 0)
                path[index].tried.insert(candidate)
                if cost <= preemptionBound {
                    path[index].chosen = candidate
                    path.removeSubrange((index + 1)...)
                    replayDepth = index + 1
                    return true
                }
            }
            index -= 1
        }
        path.removeAll()
        replayDepth = 0
        return false
    }
}
