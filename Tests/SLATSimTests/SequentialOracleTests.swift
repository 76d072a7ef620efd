import SLATArm64
import SLATCore
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

    /// Two host threads each add one right to stage-2 page 7 by reading its
    /// permissions and mapping it again with one more (a client's
    /// read-modify-write across two MMU calls, not under one lock hold):
    /// one thread's right can be lost. Every leaf still maps its own host
    /// page, so the VM's own check passes; only the sequential oracle sees
    /// that no order of the two operations ends with one right missing.
    static func stageTwoLostPermissionUpdate() -> ExplorationScenario<StageTwoExplorationVM> {
        typealias Step = ExplorationScenario<StageTwoExplorationVM>.Step
        let add = { (right: Permissions, context: Int) in
            Step("add \(right) to page 7 (read, then map)") { vm in
                let current = vm.mmu.table.translate(vm.address(page: 7)).translation?.attributes.permissions ?? .read
                vm.scheduler.yield(at: .custom("between the read and the map"))
                try vm.mapPages(7..<8, permissions: current.union(right), context: context)
                return nil
            }
        }
        return withSequentialOracle(ExplorationScenario(
            name: "stage 2: two read-modify-writes of page 7's permissions",
            threads: [[add(.write, 1)], [add(.execute, 2)]],
            makeWorld: { scheduler in
                let vm = try StageTwoExplorationVM(scheduler, vcpus: 1, hostThreads: 2, hostMappingSize: .size4K)
                try vm.mapPages(7..<8, permissions: .read, context: 1)
                return vm
            },
            check: { $0.check() }))
    }

    @Test("stage 2: a lost permission update the VM's own check ignores matches no sequential order")
    func stageTwoLostUpdateIsNotSequential() throws {
        let budget = ExplorationBudget(executions: 1000, seconds: 20)
        var unjudged = Self.stageTwoLostPermissionUpdate()
        unjudged.sequentialOracle = nil
        let ignored = Explorer.explore(unjudged, strategy: .exhaustive(preemptionBound: 2), budget: budget)
        #expect(ignored.failure == nil, "the VM's own check should not see the lost update: \(ignored)")
        #expect(ignored.exhausted)

        let outcome = Explorer.explore(Self.stageTwoLostPermissionUpdate(), strategy: .exhaustive(preemptionBound: 2),
                                       budget: budget)
        let failure = try #require(outcome.failure, "\(outcome)")
        #expect(failure.message.contains("matches no sequential order"))
    }
}
