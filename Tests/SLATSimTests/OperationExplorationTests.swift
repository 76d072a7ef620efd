import SLATCore
import SLATSim
import Testing

/// The fast-fault, aging, recovery, eager-split and memslot scenarios
/// explored on the unmodified library (both backends): every schedule
/// within the budget passes every oracle. Each test prints its explored
/// schedule count.
@Suite("Exploration: fast faults, aging, recovery, eager split and memslot changes")
struct OperationExplorationTests {
    static var strategies: [ExplorationStrategy] { ExplorationTestBudget.strategies }

    func expectPasses<World>(_ scenario: ExplorationScenario<World>, _ strategy: ExplorationStrategy) {
        ExplorationTestBudget.expectPasses(scenario, strategy)
    }

    @Test("x86: fast page faults (write-protect log) beside harvests", arguments: strategies)
    func fastFaults(strategy: ExplorationStrategy) {
        expectPasses(TDPExplorationScenarios.fastFaultsBesideHarvests(), strategy)
    }

    @Test("x86: aging beside writes with a dirty-bit log", arguments: strategies)
    func x86Aging(strategy: ExplorationStrategy) {
        expectPasses(TDPExplorationScenarios.agingBesideWrites(), strategy)
    }

    @Test("x86: huge-page recovery beside accesses", arguments: strategies)
    func hugePageRecovery(strategy: ExplorationStrategy) {
        expectPasses(TDPExplorationScenarios.hugePageRecoveryBesideAccesses(), strategy)
    }

    @Test("x86: NX huge-page recovery beside accesses", arguments: strategies)
    func nxRecovery(strategy: ExplorationStrategy) {
        expectPasses(TDPExplorationScenarios.nxRecoveryBesideAccesses(), strategy)
    }

    @Test("x86: NX huge-page recovery beside logged writes", arguments: strategies)
    func nxRecoveryLogged(strategy: ExplorationStrategy) {
        expectPasses(TDPExplorationScenarios.nxRecoveryBesideLoggedWrites(), strategy)
    }

    @Test("x86: memslot removal beside faults", arguments: strategies)
    func memslotRemoval(strategy: ExplorationStrategy) {
        expectPasses(TDPExplorationScenarios.memslotRemovalBesideFaults(), strategy)
    }

    @Test("x86: memslot added beside accesses", arguments: strategies)
    func memslotAdd(strategy: ExplorationStrategy) {
        expectPasses(TDPExplorationScenarios.memslotAddBesideAccesses(), strategy)
    }

    @Test("x86: memslot added again elsewhere beside writes, its dirty log enabled", arguments: strategies)
    func memslotReadded(strategy: ExplorationStrategy) {
        expectPasses(TDPExplorationScenarios.readdedMemslotBesideWrites(), strategy)
    }

    @Test("x86: memslot made read-only beside writes", arguments: strategies)
    func memslotReadOnly(strategy: ExplorationStrategy) {
        expectPasses(TDPExplorationScenarios.memslotReadOnlyBesideWrites(), strategy)
    }

    @Test("x86: eager split beside accesses", arguments: strategies)
    func x86EagerSplit(strategy: ExplorationStrategy) {
        expectPasses(TDPExplorationScenarios.eagerSplitBesideAccesses(), strategy)
    }

    @Test("stage 2: eager split beside accesses", arguments: strategies)
    func eagerSplit(strategy: ExplorationStrategy) {
        expectPasses(StageTwoExplorationScenarios.eagerSplitBesideAccesses(), strategy)
    }

    @Test("stage 2: memslot removal beside faults", arguments: strategies)
    func stageTwoMemslotRemoval(strategy: ExplorationStrategy) {
        expectPasses(StageTwoExplorationScenarios.memslotRemovalBesideFaults(), strategy)
    }

    @Test("stage 2: memslot added beside accesses", arguments: strategies)
    func stageTwoMemslotAdd(strategy: ExplorationStrategy) {
        expectPasses(StageTwoExplorationScenarios.memslotAddBesideAccesses(), strategy)
    }

    @Test("stage 2: memslot made read-only beside writes", arguments: strategies)
    func stageTwoMemslotReadOnly(strategy: ExplorationStrategy) {
        expectPasses(StageTwoExplorationScenarios.memslotReadOnlyBesideWrites(), strategy)
    }

    @Test("stage 2: aging beside accesses", arguments: strategies)
    func stageTwoAging(strategy: ExplorationStrategy) {
        expectPasses(StageTwoExplorationScenarios.agingBesideAccesses(), strategy)
    }
}

/// `scenario` with one scheduling step per table-entry access (its race
/// may sit between an operation's read of an entry and its write).
func perEntry<World>(_ scenario: ExplorationScenario<World>) -> ExplorationScenario<World> {
    var scenario = scenario
    scenario.perEntrySteps = true
    return scenario
}

/// A world the sequential-order oracle can judge: `tableSummary()` is what
/// a sequential order of the operations decides about its tables (SLATSim's
/// `translationSummary(of:in:)`), whichever the backend.
protocol SequentiallyJudged: AnyObject {
    func tableSummary() -> String
}

/// The sequential-order oracle over `World`'s table summary.
func sequentialOracle<World: SequentiallyJudged>() -> SequentialOracle<World> {
    SequentialOracle { $0.tableSummary() }
}

/// `scenario` with the sequential-order oracle over its world's tables.
func withSequentialOracle<World: SequentiallyJudged>(_ scenario: ExplorationScenario<World>) -> ExplorationScenario<World> {
    var scenario = scenario
    scenario.sequentialOracle = sequentialOracle()
    return scenario
}

extension TDPExplorationVM: SequentiallyJudged {}
extension TDPDirtyLogWorld: SequentiallyJudged {}
extension StageTwoExplorationVM: SequentiallyJudged {}
extension DirtyLogWorld: SequentiallyJudged {
    func tableSummary() -> String { vm.tableSummary() }
}
extension ManualDirtyLogWorld: SequentiallyJudged where VM: SequentiallyJudged {
    func tableSummary() -> String { vm.tableSummary() }
}
