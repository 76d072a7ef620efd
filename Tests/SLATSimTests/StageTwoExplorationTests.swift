import SLATArm64
import SLATCore
import SLATSim
import Testing

/// The stage-2 scenarios explored on the unmodified library: every
/// schedule within the budget passes every oracle. Each test prints its
/// explored schedule count.
@Suite("Exploration: stage-2 scenarios")
struct StageTwoExplorationTests {
    static var budget: ExplorationBudget { ExplorationTestBudget.scenario }

    @Test("Shared unmap beside a block fault", arguments: [
        ExplorationStrategy.exhaustive(preemptionBound: 2), .pct(depth: 3, seed: 1), .random(seed: 1),
    ])
    func sharedUnmap(strategy: ExplorationStrategy) {
        let outcome = Explorer.explore(StageTwoExplorationScenarios.sharedUnmapBesideBlockFault(), strategy: strategy,
                                       budget: Self.budget)
        print(outcome)
        #expect(outcome.failure == nil, "\(outcome)")
        #expect(outcome.executions > 10)
    }

    @Test("Shared unmap beside a page fault that links tables", arguments: [
        ExplorationStrategy.exhaustive(preemptionBound: 2), .pct(depth: 3, seed: 4), .random(seed: 4),
    ])
    func sharedUnmapBesidePageFault(strategy: ExplorationStrategy) {
        let outcome = Explorer.explore(StageTwoExplorationScenarios.sharedUnmapBesidePageFault(), strategy: strategy,
                                       budget: Self.budget)
        print(outcome)
        #expect(outcome.failure == nil, "\(outcome)")
        #expect(outcome.executions > 10)
    }

    @Test("Merge beside cached pages", arguments: [
        ExplorationStrategy.exhaustive(preemptionBound: 2), .pct(depth: 3, seed: 2),
    ])
    func merge(strategy: ExplorationStrategy) {
        let outcome = Explorer.explore(StageTwoExplorationScenarios.mergeBesideCachedPages(), strategy: strategy,
                                       budget: Self.budget)
        print(outcome)
        #expect(outcome.failure == nil, "\(outcome)")
        #expect(outcome.executions > 10)
    }

    @Test("Write beside a permission gain", arguments: [
        ExplorationStrategy.exhaustive(preemptionBound: 2), .pct(depth: 3, seed: 3),
    ])
    func permissionGain(strategy: ExplorationStrategy) {
        let outcome = Explorer.explore(StageTwoExplorationScenarios.writeBesidePermissionGain(), strategy: strategy,
                                       budget: Self.budget)
        print(outcome)
        #expect(outcome.failure == nil, "\(outcome)")
        #expect(outcome.executions > 10)
    }

    @Test("Dirty-log harvest beside writes", arguments: [
        ExplorationStrategy.exhaustive(preemptionBound: 2), .pct(depth: 3, seed: 4),
    ])
    func dirtyLog(strategy: ExplorationStrategy) {
        let outcome = Explorer.explore(StageTwoExplorationScenarios.dirtyLogHarvestBesideWrites(), strategy: strategy,
                                       budget: Self.budget)
        print(outcome)
        #expect(outcome.failure == nil, "\(outcome)")
        #expect(outcome.executions > 10)
    }
}
