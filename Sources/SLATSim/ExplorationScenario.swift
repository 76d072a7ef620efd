import SLATCore

/// Concurrent operations to explore: a fresh world per execution, one
/// list of steps per thread, and an oracle over the world once every
/// thread is done.
///
/// Each execution calls `makeWorld` with that execution's scheduler (build
/// the memory, TLB and lock wrappers around it), runs thread `t`'s steps in
/// order on logical thread `t`, then `check`. A step returns a failure
/// message or `nil`; a thrown error is a failure too. Everything must be
/// deterministic for a given schedule (no clocks, no unseeded randomness),
/// or replays and the exhaustive search go astray.
public struct ExplorationScenario<World>: @unchecked Sendable {
    // @unchecked Sendable: the closures run on the scheduler's logical
    // threads one at a time (see ControlledScheduler), and on the caller's
    // thread only before the threads start and after they have all finished.

    /// One operation of one thread.
    public struct Step {
        /// What the step does, for failure reports.
        public var name: String
        /// Runs the operation; returns a failure message or `nil`.
        public var run: (World) throws -> String?

        /// A step called `name`.
        public init(_ name: String, _ run: @escaping (World) throws -> String?) {
            self.name = name
            self.run = run
        }
    }

    /// The scenario's name.
    public var name: String
    /// The steps of each thread (thread index = position).
    public var threads: [[Step]]
    /// Builds a fresh world for one execution.
    public var makeWorld: (ControlledScheduler) throws -> World
    /// The oracle at the end: a failure message or `nil`.
    public var check: (World) -> String?
    #if SLAT_EXPLORATION_HOOKS
    /// Library defects switched on for the scenario's threads (mutation
    /// testing of the explorer; hosted debug builds only).
    public var mutations: Set<ExplorationMutation> = []
    #endif
    /// The smallest step: one table page (`false`, the default: the
    /// accesses through one `entries(at:)` pointer run without a switch) or
    /// one table entry (`true`: every load, store and compare-and-exchange
    /// the library reports is a scheduling point, see
    /// ``ControlledScheduler/yieldsAtTableEntries``). Finer steps find races
    /// inside one table page at the cost of many more schedules.
    public var perEntrySteps = false
    /// The sequential-order oracle (``SequentialOracle``), checked after
    /// `check` passes: the final state must be one that some sequential
    /// order of the steps produces. `nil`: none.
    public var sequentialOracle: SequentialOracle<World>? {
        didSet { sequentialCache = SequentialSummaries() }
    }
    /// The sequential orders' summaries, computed once per scenario value.
    var sequentialCache = SequentialSummaries()

    /// A scenario.
    public init(name: String, threads: [[Step]], makeWorld: @escaping (ControlledScheduler) throws -> World,
                check: @escaping (World) -> String?) {
        self.name = name
        self.threads = threads
        self.makeWorld = makeWorld
        self.check = check
    }

    /// The scenario without thread `thread`'s step `index`.
    public func removing(thread: Int, step index: Int) -> ExplorationScenario {
        var copy = self
        copy.threads[thread].remove(at: index)
        copy.sequentialCache = SequentialSummaries()
        return copy
    }

    /// Steps over all threads.
    public var stepCount: Int { threads.reduce(0) { $0 + $1.count } }

    /// Runs one execution under `policy`.
    public func execute(policy: SchedulingPolicy, stepLimit: Int = 200_000) -> ExecutionRecord {
        let scheduler = ControlledScheduler(policy: policy, stepLimit: stepLimit)
        scheduler.yieldsAtTableEntries = perEntrySteps
        #if SLAT_EXPLORATION_HOOKS
        scheduler.mutations = mutations
        #endif
        let world: World
        do {
            world = try makeWorld(scheduler)
        } catch {
            return ExecutionRecord(choices: [], preemptions: 0, steps: 0, failure: "building the world threw \(error)",
                                   completed: false)
        }
        let box = WorldBox(world)
        for (index, steps) in threads.enumerated() {
            let scenario = self
            do {
                try scheduler.spawn("thread \(index)") { [box] in
                    for step in scenario.threads[index] {
                        do {
                            if let message = try step.run(box.world) {
                                scheduler.recordFailure("thread \(index), \(step.name): \(message)")
                            }
                        } catch {
                            scheduler.recordFailure("thread \(index), \(step.name) threw \(error)")
                        }
                    }
                }
            } catch {
                return ExecutionRecord(choices: [], preemptions: 0, steps: 0, failure: "spawning threw \(error)",
                                       completed: false)
            }
            _ = steps
        }
        var record = scheduler.run()
        if record.completed && record.failure == nil, let message = check(world) ?? sequentialFailure(world) {
            record.failure = message
        }
        return record
    }
}

/// Carries a scenario's world to its logical threads.
// @unchecked Sendable: the world is used by one logical thread at a time
// (ControlledScheduler runs exactly one), handed over through semaphores.
final class WorldBox<World>: @unchecked Sendable {
    let world: World
    init(_ world: World) { self.world = world }
}
