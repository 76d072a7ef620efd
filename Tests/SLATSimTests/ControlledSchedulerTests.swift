import Foundation
import SLATCore
import SLATSim
import Synchronization
import Testing

/// A shared counter whose increment is a load, a scheduling point and a
/// store: the lost update every schedule explorer must find.
final class RacyCounter: @unchecked Sendable {
    // @unchecked Sendable: used only by the logical threads of one
    // ControlledScheduler, which run one at a time.
    var value = 0
    /// Increments that ran (the oracle's expectation; shrinking removes some).
    var increments = 0
    let scheduler: ControlledScheduler
    let lock: ScheduledReaderWriterLock<SpinningReaderWriterLock>
    init(_ scheduler: ControlledScheduler) {
        self.scheduler = scheduler
        lock = ScheduledReaderWriterLock(wrapping: SpinningReaderWriterLock(), scheduler: scheduler)
    }

    func increment(locked: Bool) {
        increments += 1
        if locked { lock.lockExclusive() }
        let seen = value
        scheduler.yield(at: .custom("between load and store"))
        value = seen + 1
        if locked { lock.unlockExclusive() }
    }
}

func counterScenario(threads: Int, incrementsPerThread: Int, locked: Bool) -> ExplorationScenario<RacyCounter> {
    let step = ExplorationScenario<RacyCounter>.Step("increment") { counter in
        counter.increment(locked: locked)
        return nil
    }
    return ExplorationScenario(
        name: "counter", threads: Array(repeating: Array(repeating: step, count: incrementsPerThread), count: threads),
        makeWorld: { RacyCounter($0) },
        check: { counter in
            counter.value == counter.increments ? nil : "lost update: \(counter.value) of \(counter.increments)"
        })
}

/// Always chooses thread 7, which never exists.
final class OutOfRangePolicy: SchedulingPolicy {
    func choose(_ decision: SchedulingDecision) -> Int { 7 }
}

@Suite("Controlled scheduler: misuse answered without a trap")
struct ControlledSchedulerMisuseTests {
    @Test("A spawn after run() throws spawnAfterRun and adds no thread")
    func spawnAfterRunThrows() throws {
        let scheduler = ControlledScheduler(policy: RandomSchedulingPolicy(seed: 1))
        try scheduler.spawn("only") {}
        let record = scheduler.run()
        #expect(record.failure == nil)
        #expect(throws: ControlledSchedulerError.spawnAfterRun) { try scheduler.spawn("late") {} }
    }

    @Test("A policy choosing a thread that is not enabled ends the execution as a failure")
    func invalidPolicyChoiceFailsTheExecution() throws {
        let scheduler = ControlledScheduler(policy: OutOfRangePolicy())
        try scheduler.spawn("a") {}
        try scheduler.spawn("b") {}
        let record = scheduler.run()
        #expect(!record.completed)
        #expect(record.failure?.contains("chose thread 7") == true)
    }
}

@Suite("Controlled scheduler: strategies, replay, shrinking, blocking")
struct ControlledSchedulerTests {
    @Test("The bounded exhaustive search finds the lost update with one preemption, and the shrunk schedule replays it")
    func exhaustiveSearchFindsLostUpdate() throws {
        let scenario = counterScenario(threads: 2, incrementsPerThread: 3, locked: false)
        let outcome = Explorer.explore(scenario, strategy: .exhaustive(preemptionBound: 2),
                                       budget: ExplorationBudget(executions: 10_000, seconds: 10))
        let failure = try #require(outcome.failure)
        #expect(failure.message.hasPrefix("lost update"))
        #expect(failure.preemptions == 1, "\(failure)")
        // Operations shrunk: one increment per thread is enough.
        #expect(failure.remainingSteps.map(\.count) == [1, 1], "\(failure)")
        let removals = failure.removedSteps.map { ($0.thread, $0.index) }
        let replayed = Explorer.replay(scenario, schedule: failure.schedule, removing: removals)
        #expect(replayed.failure == failure.message)
        #expect(replayed.schedule == failure.schedule)
    }

    @Test("With the lock, the bounded search runs out of schedules without a failure", arguments: [0, 1, 2])
    func lockedCounterPassesEverySchedule(bound: Int) {
        let outcome = Explorer.explore(counterScenario(threads: 2, incrementsPerThread: 2, locked: true),
                                       strategy: .exhaustive(preemptionBound: bound),
                                       budget: ExplorationBudget(executions: 100_000, seconds: 20))
        #expect(outcome.failure == nil, "\(outcome)")
        #expect(outcome.exhausted)
        // More preemptions allowed, more schedules (bound 0: one per first thread).
        switch bound {
        case 0: #expect(outcome.executions == 2)
        default: #expect(outcome.executions > 2)
        }
    }

    @Test("The exhaustive search without preemptions cannot find the lost update (it needs one)")
    func zeroBoundMissesTheRace() {
        let outcome = Explorer.explore(counterScenario(threads: 2, incrementsPerThread: 1, locked: false),
                                       strategy: .exhaustive(preemptionBound: 0),
                                       budget: ExplorationBudget(executions: 1000, seconds: 10))
        #expect(outcome.failure == nil && outcome.exhausted && outcome.executions == 2)
    }

    @Test("PCT and random scheduling find the lost update among three threads", arguments: [
        ExplorationStrategy.pct(depth: 3, seed: 7), .random(seed: 7),
    ])
    func randomizedStrategiesFindLostUpdate(strategy: ExplorationStrategy) throws {
        let outcome = Explorer.explore(counterScenario(threads: 3, incrementsPerThread: 2, locked: false),
                                       strategy: strategy, budget: ExplorationBudget(executions: 2000, seconds: 10))
        let failure = try #require(outcome.failure)
        #expect(failure.message.hasPrefix("lost update"))
        // The same seed finds it at the same execution.
        let again = Explorer.explore(counterScenario(threads: 3, incrementsPerThread: 2, locked: false),
                                     strategy: strategy, budget: ExplorationBudget(executions: 2000, seconds: 10),
                                     shrinking: false)
        #expect(again.failure?.execution == failure.execution)
        #expect(again.failure?.originalSchedule == failure.originalSchedule)
    }

    @Test("Two threads taking two locks in opposite orders: the explorer reports the deadlock instead of hanging")
    func deadlockIsReported() throws {
        final class TwoLocks: @unchecked Sendable {
            // @unchecked Sendable: the locks are themselves Sendable.
            let first: ScheduledReaderWriterLock<SpinningReaderWriterLock>
            let second: ScheduledReaderWriterLock<SpinningReaderWriterLock>
            init(_ scheduler: ControlledScheduler) {
                first = ScheduledReaderWriterLock(wrapping: SpinningReaderWriterLock(), scheduler: scheduler)
                second = ScheduledReaderWriterLock(wrapping: SpinningReaderWriterLock(), scheduler: scheduler)
            }
        }
        let scenario = ExplorationScenario<TwoLocks>(
            name: "lock order",
            threads: [
                [.init("first then second") { locks in
                    locks.first.lockExclusive(); locks.second.lockExclusive()
                    locks.second.unlockExclusive(); locks.first.unlockExclusive()
                    return nil
                }],
                [.init("second then first") { locks in
                    locks.second.lockExclusive(); locks.first.lockExclusive()
                    locks.first.unlockExclusive(); locks.second.unlockExclusive()
                    return nil
                }],
            ],
            makeWorld: { TwoLocks($0) }, check: { _ in nil })
        let outcome = Explorer.explore(scenario, strategy: .exhaustive(preemptionBound: 1),
                                       budget: ExplorationBudget(executions: 1000, seconds: 20), shrinking: false)
        let failure = try #require(outcome.failure)
        #expect(failure.message.hasPrefix("deadlock"), "\(failure)")
    }

    @Test("SLATCore's per-slot MMU lock under the scheduler: writers and readers exclude each other in every schedule")
    func perSlotLockExcludesUnderEverySchedule() {
        final class Shared: @unchecked Sendable {
            // @unchecked Sendable: used by one logical thread at a time.
            let lock = try! PerSlotReaderWriterLock(slotCount: 2)   // 2 is in range
            let scheduler: ControlledScheduler
            var value = 0
            init(_ scheduler: ControlledScheduler) { self.scheduler = scheduler }
        }
        let writer = ExplorationScenario<Shared>.Step("exclusive increment") { shared in
            shared.lock.lockExclusive()
            let seen = shared.value
            shared.scheduler.yield(at: .custom("inside"))
            shared.value = seen + 1
            shared.lock.unlockExclusive()
            return nil
        }
        let reader = ExplorationScenario<Shared>.Step("shared read") { shared in
            shared.lock.lockShared(slot: 0)
            let first = shared.value
            shared.scheduler.yield(at: .custom("inside"))
            let second = shared.value
            shared.lock.unlockShared(slot: 0)
            return first == second ? nil : "value changed under a shared hold"
        }
        let scenario = ExplorationScenario<Shared>(
            name: "per-slot lock", threads: [[writer, writer], [reader, reader], [writer]],
            makeWorld: { Shared($0) }, check: { $0.value == 3 ? nil : "lost update: \($0.value)" })
        let outcome = Explorer.explore(scenario, strategy: .exhaustive(preemptionBound: 2),
                                       budget: ExplorationBudget(executions: 3000, seconds: 10))
        #expect(outcome.failure == nil, "\(outcome)")
        #expect(outcome.executions > 100)
    }

    @Test("Schedules print and parse back")
    func scheduleTextRoundTrip() throws {
        let schedule = Schedule(choices: [0, 0, 0, 1, 1, 0, 2])
        #expect(schedule.description == "0x3 1x2 0x1 2x1")
        #expect(Schedule(schedule.description) == schedule)
        #expect(schedule.switches == 3 && schedule.steps == 7)
        #expect(Schedule("0x3 x") == nil)
    }
}

/// The budget of one scenario exploration in the test suite: 1500
/// executions and 4 s, times `SLAT_EXPLORATION_SCALE` (an integer, default
/// 1; `.ci/run`'s exploration step raises it).
enum ExplorationTestBudget {
    static var scale: Int {
        guard let text = ProcessInfo.processInfo.environment["SLAT_EXPLORATION_SCALE"], let value = Int(text),
              value > 0 else { return 1 }
        return value
    }

    static var scenario: ExplorationBudget {
        ExplorationBudget(executions: 1500 * scale, seconds: 4 * Double(scale))
    }

    /// The strategies every scenario suite runs each scenario under.
    static let strategies: [ExplorationStrategy] = [.exhaustive(preemptionBound: 2), .pct(depth: 3, seed: 12)]

    /// Explores `scenario` under `strategy` within ``scenario`` and expects
    /// no failure in more than 10 executions; prints the outcome (the
    /// explored schedule count).
    static func expectPasses<World>(_ scenario: ExplorationScenario<World>, _ strategy: ExplorationStrategy) {
        let outcome = Explorer.explore(scenario, strategy: strategy, budget: Self.scenario)
        print(outcome)
        #expect(outcome.failure == nil, "\(outcome)")
        #expect(outcome.executions > 10)
    }
}
