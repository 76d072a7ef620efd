import SLATCore
import SLATSim
import Testing

/// The fast permission fault explored on the unmodified library: every
/// schedule within the budget keeps the VM's oracles (no write after the
/// memslot was made read-only, no writable leaf left, every write in a
/// harvest). Each test prints its explored schedule count.
@Suite("Exploration: stage-2 fast permission fault")
struct StageTwoFastFaultExplorationTests {
    static var strategies: [ExplorationStrategy] { ExplorationTestBudget.strategies }

    func expectPasses<World>(_ scenario: ExplorationScenario<World>, _ strategy: ExplorationStrategy) {
        ExplorationTestBudget.expectPasses(scenario, strategy)
    }

    @Test("stage 2: fast permission faults beside a memslot made read-only", arguments: strategies)
    func memslotReadOnly(strategy: ExplorationStrategy) {
        expectPasses(StageTwoFastFaultScenarios.memslotReadOnlyBesideFastFaults(), strategy)
    }

    @Test("stage 2: fast permission faults beside a host write-protect", arguments: strategies)
    func hostProtect(strategy: ExplorationStrategy) {
        expectPasses(StageTwoFastFaultScenarios.hostProtectBesideFastFaults(), strategy)
    }

    @Test("stage 2: fast permission faults beside harvests, per-entry steps", arguments: strategies)
    func harvest(strategy: ExplorationStrategy) {
        expectPasses(StageTwoFastFaultScenarios.harvestBesideFastFaults(), strategy)
    }
}
