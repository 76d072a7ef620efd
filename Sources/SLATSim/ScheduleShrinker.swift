/// Shrinks a failing execution: first fewer operations (each scenario step
/// removed in turn; the failing schedule is replayed on what is left and,
/// when that passes, a small exhaustive search with the failure's
/// preemption bound looks for a failing schedule of the smaller scenario), then
/// fewer preemptions (each run of the schedule dropped in turn, its steps
/// left to the non-preemptive choice). A change is kept when the replay
/// still fails the same way (``signature(of:)``), runs to its end and has
/// no more preemptions; shrinking
/// ends when no single removal keeps the failure, or after `attempts`
/// replays. The result's schedule replays the shrunk failure exactly.
public enum ScheduleShrinker {
    /// A shrunk failure.
    public struct Result<World> {
        /// The scenario with the removed steps gone.
        public var scenario: ExplorationScenario<World>
        /// The shrunk execution.
        public var record: ExecutionRecord
        /// The removed steps, in order.
        public var removed: [ExplorationFailure.RemovedStep]
    }

    /// Shrinks `record`, a failing execution of `scenario`.
    public static func shrink<World>(
        _ scenario: ExplorationScenario<World>, record: ExecutionRecord, stepLimit: Int = 200_000, attempts: Int = 400,
        searchBudget: ExplorationBudget = ExplorationBudget(executions: 200, seconds: 0.5)
    ) -> Result<World> {
        var best = Result(scenario: scenario, record: record, removed: [])
        var budget = attempts
        let wanted = signature(of: record.failure ?? "")
        func accepts(_ candidate: ExecutionRecord) -> Bool {
            guard let failure = candidate.failure else { return false }
            return signature(of: failure) == wanted && (candidate.completed || !record.completed)
                && candidate.preemptions <= best.record.preemptions
        }
        // Fewer operations.
        var changed = true
        while changed && budget > 0 {
            changed = false
            search: for thread in best.scenario.threads.indices {
                for index in best.scenario.threads[thread].indices {
                    guard budget > 0 else { break search }
                    budget -= 1
                    let smaller = best.scenario.removing(thread: thread, step: index)
                    var candidate = smaller.execute(policy: ReplayPolicy(best.record.schedule), stepLimit: stepLimit)
                    if !accepts(candidate) {
                        let search = Explorer.explore(
                            smaller, strategy: .exhaustive(preemptionBound: best.record.preemptions),
                            budget: searchBudget, shrinking: false, stepLimit: stepLimit)
                        if let failure = search.failure {
                            candidate = smaller.execute(policy: ReplayPolicy(failure.schedule), stepLimit: stepLimit)
                        }
                    }
                    if accepts(candidate) {
                        let name = best.scenario.threads[thread][index].name
                        best = Result(scenario: smaller, record: candidate,
                                      removed: best.removed + [.init(thread: thread, index: index, name: name)])
                        changed = true
                        break search
                    }
                }
            }
        }
        // Fewer preemptions.
        changed = true
        while changed && budget > 0 {
            changed = false
            let runs = best.record.schedule.runs
            for index in runs.indices.dropFirst() where budget > 0 {
                budget -= 1
                var fewer = runs
                fewer.remove(at: index)
                let candidate = best.scenario.execute(policy: ReplayPolicy(Schedule(runs: fewer)), stepLimit: stepLimit)
                if accepts(candidate) && candidate.schedule.switches < best.record.schedule.switches {
                    best.record = candidate
                    changed = true
                    break
                }
            }
        }
        return best
    }

    /// What kind of failure a message reports: its words without those
    /// holding a digit (thread and step numbers, addresses, counts), so
    /// that "thread 2, vCPU 1 write frame 3: ... old host page" and the same
    /// failure of a smaller scenario match, while another oracle's does not.
    public static func signature(of message: String) -> String {
        message.split(whereSeparator: \.isWhitespace)
            .filter { !$0.contains(where: \.isNumber) }
            .joined(separator: " ")
    }
}
