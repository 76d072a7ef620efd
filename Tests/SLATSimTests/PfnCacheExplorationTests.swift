import SLATCore
import SLATPfnCache
import SLATSim
import Testing

/// The pfn cache scenarios explored on the unmodified library: every
/// schedule within the budget passes every oracle. Each test prints its
/// explored schedule count.
@Suite("Exploration: pfn cache scenarios")
struct PfnCacheExplorationTests {
    static var budget: ExplorationBudget { ExplorationTestBudget.scenario }

    @Test("Refresh beside an unrelated notifier storm and a remap", arguments: [
        ExplorationStrategy.exhaustive(preemptionBound: 2), .pct(depth: 3, seed: 11), .random(seed: 11),
    ])
    func refreshBesideStorm(strategy: ExplorationStrategy) {
        let outcome = Explorer.explore(PfnCacheExplorationScenarios.refreshBesideNotifierStorm(), strategy: strategy,
                                       budget: Self.budget)
        print(outcome)
        #expect(outcome.failure == nil, "\(outcome)")
        #expect(outcome.executions > 10)
    }
}
