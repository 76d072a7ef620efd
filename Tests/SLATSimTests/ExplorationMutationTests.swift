#if SLAT_EXPLORATION_HOOKS
import SLATArm64
import SLATCore
import SLATSim
import SLATx86
import Testing

/// The explorer's bite: each known defect, switched back on for the
/// scenario's threads only (`ExplorationMutation`), must be caught within
/// the budget, and the shrunk failing schedule must replay the failure.
/// Each case prints its time to first catch (Docs/simulation.md lists them).
@Suite("Exploration: known defects are caught")
struct ExplorationMutationTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var mutation: ExplorationMutation
        var strategy: ExplorationStrategy
        /// Takes more than a few seconds (thousands of schedules): run only
        /// with `SLAT_EXPLORATION_SCALE` above 1 (`.ci/run`'s exploration step).
        var slow = false
        var testDescription: String { "\(mutation.rawValue) by \(strategy)" }
    }

    static let budget = ExplorationBudget(executions: 20_000, seconds: 60)

    static let cases: [Case] = allCases.filter { !$0.slow || ExplorationTestBudget.scale > 1 }

    static let allCases: [Case] = [
        .init(mutation: .mergeWithoutInvalidation, strategy: .exhaustive(preemptionBound: 2)),
        .init(mutation: .mergeInvalidatesFirstPageOnly, strategy: .exhaustive(preemptionBound: 2)),
        .init(mutation: .sharedUnmapDefersInvalidation, strategy: .exhaustive(preemptionBound: 2)),
        .init(mutation: .sharedUnmapDefersInvalidation, strategy: .pct(depth: 3, seed: 21)),
        .init(mutation: .spuriousPermissionFaultWithoutInvalidation, strategy: .exhaustive(preemptionBound: 2)),
        .init(mutation: .spuriousPermissionFaultWithoutInvalidation, strategy: .pct(depth: 3, seed: 21)),
        .init(mutation: .fastPermissionFaultIgnoresMMUWritable, strategy: .exhaustive(preemptionBound: 2)),
        .init(mutation: .fastPermissionFaultPlainStore, strategy: .exhaustive(preemptionBound: 2)),
        .init(mutation: .fastPermissionFaultPlainStore, strategy: .pct(depth: 3, seed: 21)),
        .init(mutation: .retiredTablesFreedWithoutGracePeriod, strategy: .exhaustive(preemptionBound: 2)),
        .init(mutation: .retiredTablesFreedWithoutGracePeriod, strategy: .pct(depth: 3, seed: 21)),
        .init(mutation: .faultIgnoresInvalidationRetry, strategy: .exhaustive(preemptionBound: 2)),
        .init(mutation: .faultIgnoresInvalidationRetry, strategy: .pct(depth: 3, seed: 21)),
        .init(mutation: .removedDirtyLeafNotHarvested, strategy: .exhaustive(preemptionBound: 2)),
        .init(mutation: .zapDecidesHarvestAtStart, strategy: .exhaustive(preemptionBound: 2), slow: true),
        .init(mutation: .zapDecidesHarvestAtStart, strategy: .pct(depth: 3, seed: 21)),
        .init(mutation: .notifierZapsCurrentRootsOnly, strategy: .exhaustive(preemptionBound: 2), slow: true),
        .init(mutation: .notifierZapsCurrentRootsOnly, strategy: .pct(depth: 3, seed: 21)),
        .init(mutation: .retiredSubtreeNotHarvested, strategy: .exhaustive(preemptionBound: 2)),
        .init(mutation: .retiredSubtreeNotHarvested, strategy: .pct(depth: 3, seed: 21)),
        .init(mutation: .zapStoresOverVolatileLeaf, strategy: .exhaustive(preemptionBound: 2)),
        .init(mutation: .zapStoresOverVolatileLeaf, strategy: .pct(depth: 3, seed: 21)),
        .init(mutation: .pfnCacheLegacyRetry, strategy: .exhaustive(preemptionBound: 2)),
        .init(mutation: .pfnCacheLegacyRetry, strategy: .pct(depth: 3, seed: 21)),
        .init(mutation: .nxRecoveryDropsDirtyBits, strategy: .exhaustive(preemptionBound: 2)),
        .init(mutation: .nxRecoveryDropsDirtyBits, strategy: .pct(depth: 3, seed: 21)),
        .init(mutation: .teardownFreesRootsUnderNotifier, strategy: .exhaustive(preemptionBound: 2)),
        .init(mutation: .teardownFreesRootsUnderNotifier, strategy: .pct(depth: 3, seed: 21)),
        .init(mutation: .removedMemslotKeepsDirtyLog, strategy: .exhaustive(preemptionBound: 2)),
        .init(mutation: .removedMemslotKeepsDirtyLog, strategy: .pct(depth: 3, seed: 21)),
        .init(mutation: .manualClearSkipsReprotection, strategy: .exhaustive(preemptionBound: 2)),
        .init(mutation: .manualClearSkipsReprotection, strategy: .pct(depth: 3, seed: 21)),
    ]

    @Test("A reintroduced defect is caught and its shrunk schedule replays it", arguments: cases)
    func mutationIsCaught(_ testCase: Case) throws {
        switch testCase.mutation {
        case .mergeWithoutInvalidation, .mergeInvalidatesFirstPageOnly:
            try check(StageTwoExplorationScenarios.mergeBesideCachedPages(), testCase)
        case .sharedUnmapDefersInvalidation:
            try check(StageTwoExplorationScenarios.sharedUnmapBesideBlockFault(), testCase)
        case .spuriousPermissionFaultWithoutInvalidation:
            try check(StageTwoExplorationScenarios.writeBesidePermissionGain(), testCase)
        case .fastPermissionFaultIgnoresMMUWritable:
            try check(StageTwoFastFaultScenarios.memslotReadOnlyBesideFastFaults(), testCase)
        case .fastPermissionFaultPlainStore:
            try check(StageTwoFastFaultScenarios.hostProtectBesideFastFaults(), testCase)
        case .retiredTablesFreedWithoutGracePeriod:
            try check(StageTwoExplorationScenarios.sharedUnmapBesideBlockFault(), testCase)
        case .faultIgnoresInvalidationRetry:
            try check(TDPExplorationScenarios.faultsBesideNotifier(), testCase)
        case .removedDirtyLeafNotHarvested:
            try check(TDPExplorationScenarios.dirtyLogBesideZap(mode: .dirtyBit), testCase)
        case .zapDecidesHarvestAtStart:
            try check(TDPExplorationScenarios.enableBesideYieldingZap(), testCase)
        case .notifierZapsCurrentRootsOnly:
            try check(TDPExplorationScenarios.rootInvalidationBesideNotifier(), testCase)
        case .retiredSubtreeNotHarvested:
            try check(TDPExplorationScenarios.replacedRootZapBesideWrites(), testCase)
        case .zapStoresOverVolatileLeaf:
            // The race is between the zap's read of a leaf and its write of
            // the same entry: only per-entry steps can put a vCPU's write there.
            var scenario = TDPExplorationScenarios.dirtyLogBesideZap(mode: .dirtyBit)
            scenario.perEntrySteps = true
            scenario.name += ", per-entry steps"
            try check(scenario, testCase)
        case .pfnCacheLegacyRetry:
            try check(PfnCacheExplorationScenarios.refreshBesideNotifierStorm(), testCase)
        case .nxRecoveryDropsDirtyBits:
            try check(TDPExplorationScenarios.nxRecoveryBesideLoggedWrites(), testCase)
        case .teardownFreesRootsUnderNotifier:
            try check(TDPExplorationScenarios.teardownBesideNotifierAndFaults(), testCase)
        case .removedMemslotKeepsDirtyLog:
            try check(TDPExplorationScenarios.readdedMemslotBesideWrites(), testCase)
        case .manualClearSkipsReprotection:
            // One switch, both backends: each must catch it.
            try check(ManualDirtyLogScenarios.x86BesideWrites(mode: .writeProtect), testCase)
            try check(ManualDirtyLogScenarios.stageTwoBesideWrites(), testCase)
        }
    }

    func check<World>(_ scenario: ExplorationScenario<World>, _ testCase: Case) throws {
        var mutated = scenario
        mutated.mutations = [testCase.mutation]
        let outcome = Explorer.explore(mutated, strategy: testCase.strategy, budget: Self.budget)
        print("mutation \(testCase.mutation.rawValue): \(outcome)")
        let failure = try #require(outcome.failure, "\(testCase.mutation) not caught: \(outcome)")
        #expect(outcome.secondsToFailure ?? .infinity < 60)
        let removals = failure.removedSteps.map { ($0.thread, $0.index) }
        let replayed = Explorer.replay(mutated, schedule: failure.schedule, removing: removals)
        #expect(replayed.failure != nil, "the shrunk schedule does not replay the failure: \(failure)")
        // The same schedule on the unmutated library passes.
        let clean = Explorer.replay(scenario, schedule: failure.schedule, removing: removals)
        #expect(clean.failure == nil, "\(clean)")
    }
}
#endif
