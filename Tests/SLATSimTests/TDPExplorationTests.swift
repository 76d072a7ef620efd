import SLATCore
import SLATSim
import SLATx86
import Testing

/// The x86 TDP MMU scenarios explored on the unmodified library: every
/// schedule within the budget passes every oracle. Each test prints its
/// explored schedule count.
@Suite("Exploration: x86 TDP MMU scenarios")
struct TDPExplorationTests {
    static var budget: ExplorationBudget { ExplorationTestBudget.scenario }

    @Test("Dirty log beside a zap", arguments: [
        (DirtyLogMode.dirtyBit, ExplorationStrategy.exhaustive(preemptionBound: 2)),
        (.dirtyBit, .pct(depth: 3, seed: 5)),
        (.writeProtect, .exhaustive(preemptionBound: 2)),
        (.writeProtect, .pct(depth: 3, seed: 5)),
    ])
    func dirtyLog(mode: DirtyLogMode, strategy: ExplorationStrategy) {
        let outcome = Explorer.explore(TDPExplorationScenarios.dirtyLogBesideZap(mode: mode), strategy: strategy,
                                       budget: Self.budget)
        print(outcome)
        #expect(outcome.failure == nil, "\(outcome)")
        #expect(outcome.executions > 10)
    }

    @Test("Dirty log (dirty bit) beside a zap, one step per table-entry access", arguments: [
        ExplorationStrategy.exhaustive(preemptionBound: 2), .pct(depth: 3, seed: 5),
    ])
    func dirtyLogPerEntry(strategy: ExplorationStrategy) {
        var scenario = TDPExplorationScenarios.dirtyLogBesideZap(mode: .dirtyBit)
        scenario.perEntrySteps = true
        scenario.name += ", per-entry steps"
        let outcome = Explorer.explore(scenario, strategy: strategy, budget: Self.budget)
        print(outcome)
        #expect(outcome.failure == nil, "\(outcome)")
        #expect(outcome.executions > 10)
    }

    @Test("Faults beside an mmu-notifier remap", arguments: [
        ExplorationStrategy.exhaustive(preemptionBound: 2), .pct(depth: 3, seed: 6), .random(seed: 6),
    ])
    func notifier(strategy: ExplorationStrategy) {
        let outcome = Explorer.explore(TDPExplorationScenarios.faultsBesideNotifier(), strategy: strategy,
                                       budget: Self.budget)
        print(outcome)
        #expect(outcome.failure == nil, "\(outcome)")
        #expect(outcome.executions > 10)
    }

    @Test("Teardown beside a notifier and faults", arguments: [
        ExplorationStrategy.exhaustive(preemptionBound: 2), .pct(depth: 3, seed: 7),
    ])
    func teardown(strategy: ExplorationStrategy) {
        let outcome = Explorer.explore(TDPExplorationScenarios.teardownBesideNotifierAndFaults(), strategy: strategy,
                                       budget: Self.budget)
        print(outcome)
        #expect(outcome.failure == nil, "\(outcome)")
        #expect(outcome.executions > 10)
    }

    @Test("Dirty-bit log enabled beside a yielding zap", arguments: [
        ExplorationStrategy.exhaustive(preemptionBound: 2), .pct(depth: 3, seed: 8),
    ])
    func enableBesideZap(strategy: ExplorationStrategy) {
        let outcome = Explorer.explore(TDPExplorationScenarios.enableBesideYieldingZap(), strategy: strategy,
                                       budget: Self.budget)
        print(outcome)
        #expect(outcome.failure == nil, "\(outcome)")
        #expect(outcome.executions > 10)
    }

    @Test("Root invalidation beside a notifier remap", arguments: [
        ExplorationStrategy.exhaustive(preemptionBound: 2), .pct(depth: 3, seed: 9),
    ])
    func rootInvalidation(strategy: ExplorationStrategy) {
        let outcome = Explorer.explore(TDPExplorationScenarios.rootInvalidationBesideNotifier(), strategy: strategy,
                                       budget: Self.budget)
        print(outcome)
        #expect(outcome.failure == nil, "\(outcome)")
        #expect(outcome.executions > 10)
    }

    @Test("Replaced roots zapped beside writes", arguments: [
        ExplorationStrategy.exhaustive(preemptionBound: 2), .pct(depth: 3, seed: 10),
    ])
    func replacedRootZap(strategy: ExplorationStrategy) {
        let outcome = Explorer.explore(TDPExplorationScenarios.replacedRootZapBesideWrites(), strategy: strategy,
                                       budget: Self.budget)
        print(outcome)
        #expect(outcome.failure == nil, "\(outcome)")
        #expect(outcome.executions > 10)
    }
}
