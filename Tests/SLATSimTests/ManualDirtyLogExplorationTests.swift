import SLATCore
import SLATSim
import SLATx86
import Testing

/// The manual-protection dirty-log scenarios explored on the unmodified
/// library (both backends): every schedule within the budget keeps the
/// manual-protection contract. Each test prints its explored schedule
/// count.
@Suite("Exploration: manual dirty-log protection")
struct ManualDirtyLogExplorationTests {
    static var strategies: [ExplorationStrategy] { ExplorationTestBudget.strategies }

    func expectPasses<World>(_ scenario: ExplorationScenario<World>, _ strategy: ExplorationStrategy) {
        ExplorationTestBudget.expectPasses(scenario, strategy)
    }

    @Test("x86: manual protection (write-protect mode) beside writes", arguments: strategies)
    func x86WriteProtect(strategy: ExplorationStrategy) {
        expectPasses(ManualDirtyLogScenarios.x86BesideWrites(mode: .writeProtect), strategy)
    }

    @Test("x86: manual protection (dirty-bit mode) beside writes", arguments: strategies)
    func x86DirtyBit(strategy: ExplorationStrategy) {
        expectPasses(ManualDirtyLogScenarios.x86BesideWrites(mode: .dirtyBit), strategy)
    }

    @Test("stage 2: manual protection beside writes", arguments: strategies)
    func stageTwo(strategy: ExplorationStrategy) {
        expectPasses(ManualDirtyLogScenarios.stageTwoBesideWrites(), strategy)
    }
}
