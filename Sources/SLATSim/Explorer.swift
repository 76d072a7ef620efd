import Foundation

/// Runs an ``ExplorationScenario`` under one ``ExplorationStrategy`` within
/// an ``ExplorationBudget``; the first failing execution is shrunk
/// (``ScheduleShrinker``) and returned with a schedule that replays it.
public enum Explorer {
    /// Explores `scenario`; stops at the first failure.
    public static func explore<World>(
        _ scenario: ExplorationScenario<World>, strategy: ExplorationStrategy, budget: ExplorationBudget,
        shrinking: Bool = true, stepLimit: Int = 200_000
    ) -> ExplorationOutcome {
        let start = ContinuousClock.now
        var executions = 0
        var exhausted = false
        var maximumSteps = 0
        var failing: (record: ExecutionRecord, execution: Int)?
        let search: BoundedExhaustiveSearch? = if case .exhaustive(let bound) = strategy {
            BoundedExhaustiveSearch(preemptionBound: bound)
        } else { nil }
        var stepEstimate = 0
        while executions < budget.executions && seconds(since: start) < budget.seconds {
            let policy: SchedulingPolicy
            switch strategy {
            case .exhaustive:
                policy = search!
            case .pct(let depth, let seed):
                policy = PCTPolicy(threadCount: scenario.threads.count, depth: depth,
                                   stepEstimate: max(stepEstimate, 1),
                                   seed: SimulationRandom.derivedSeed(seed, stream: executions))
            case .random(let seed):
                policy = RandomSchedulingPolicy(seed: SimulationRandom.derivedSeed(seed, stream: executions))
            }
            let record = scenario.execute(policy: policy, stepLimit: stepLimit)
            executions += 1
            maximumSteps = max(maximumSteps, record.steps)
            stepEstimate = max(stepEstimate, record.choices.count)
            if record.failure != nil {
                failing = (record, executions - 1)
                break
            }
            if let search, !search.advance() {
                exhausted = true
                break
            }
        }
        let elapsed = seconds(since: start)
        var outcome = ExplorationOutcome(scenario: scenario.name, strategy: strategy, executions: executions,
                                         exhausted: exhausted, seconds: elapsed, secondsToFailure: nil,
                                         failure: nil, maximumSteps: maximumSteps)
        guard let failing else { return outcome }
        outcome.secondsToFailure = elapsed
        let shrunk = shrinking
            ? ScheduleShrinker.shrink(scenario, record: failing.record, stepLimit: stepLimit)
            : ScheduleShrinker.Result(scenario: scenario, record: failing.record, removed: [])
        outcome.failure = ExplorationFailure(
            scenario: scenario.name, strategy: strategy, execution: failing.execution,
            originalMessage: failing.record.failure ?? "", originalSchedule: failing.record.schedule,
            originalPreemptions: failing.record.preemptions, message: shrunk.record.failure ?? "",
            schedule: shrunk.record.schedule, preemptions: shrunk.record.preemptions, removedSteps: shrunk.removed,
            remainingSteps: shrunk.scenario.threads.map { $0.map(\.name) })
        return outcome
    }

    /// Replays `schedule` on `scenario` after removing the listed
    /// (thread, step index) pairs in order, as an ``ExplorationFailure``
    /// prints them.
    public static func replay<World>(
        _ scenario: ExplorationScenario<World>, schedule: Schedule, removing: [(Int, Int)] = []
    ) -> ExecutionRecord {
        var reduced = scenario
        for (thread, index) in removing { reduced = reduced.removing(thread: thread, step: index) }
        return reduced.execute(policy: ReplayPolicy(schedule))
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }
}
