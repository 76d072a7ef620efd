import SLATSim
import Testing

/// The sequential-order oracle: a final state no sequential order of the
/// steps produces is a failure, even where the scenario's own check has
/// nothing to say.
@Suite("Exploration: the sequential-order oracle")
struct SequentialOracleTests {
    /// The racy counter with no check of its own, judged only by the
    /// sequential oracle over its value.
    func counterJudgedSequentially(locked: Bool) -> ExplorationScenario<RacyCounter> {
        var scenario = counterScenario(threads: 2, incrementsPerThread: 1, locked: locked)
        scenario.check = { _ in nil }
        scenario.sequentialOracle = SequentialOracle { "\($0.value)" }
        return scenario
    }

    @Test("A lost update matches no sequential order and is reported")
    func lostUpdateIsNotSequential() throws {
        let outcome = Explorer.explore(counterJudgedSequentially(locked: false), strategy: .exhaustive(preemptionBound: 2),
                                       budget: ExplorationBudget(executions: 100, seconds: 10))
        let failure = try #require(outcome.failure)
        #expect(failure.message.contains("matches no sequential order"))
        #expect(failure.message.hasSuffix(": 1"))
    }

    @Test("Locked increments always match a sequential order")
    func lockedIncrementsAreSequential() {
        let outcome = Explorer.explore(counterJudgedSequentially(locked: true), strategy: .exhaustive(preemptionBound: 2),
                                       budget: ExplorationBudget(executions: 1000, seconds: 10))
        #expect(outcome.failure == nil, "\(outcome)")
        #expect(outcome.exhausted)
    }

    @Test("Orders keep each thread's program order: three threads of one, two and one steps give twelve")
    func ordersKeepProgramOrder() {
        var scenario = counterScenario(threads: 3, incrementsPerThread: 1, locked: true)
        scenario.threads[1].append(scenario.threads[1][0])
        var summaries: [String] = []
        scenario.check = { _ in nil }
        scenario.sequentialOracle = SequentialOracle { counter in
            summaries.append("\(counter.value)")
            return "\(counter.value)"
        }
        _ = Explorer.explore(scenario, strategy: .exhaustive(preemptionBound: 0),
                             budget: ExplorationBudget(executions: 1, seconds: 10))
        // Twelve sequential orders (4! / 2!), then the one explored execution.
        #expect(summaries.count == 13)
        #expect(Set(summaries) == ["4"])
    }
}
