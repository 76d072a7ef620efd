import Dispatch
import Foundation
import SLATCore

/// A deterministic cooperative scheduler over real threads, for systematic
/// exploration of interleavings (CHESS: Musuvathi et al., "Finding and
/// Reproducing Heisenbugs in Concurrent Programs", OSDI 2008).
///
/// Each logical thread is a real thread that blocks on its own semaphore
/// until it is chosen; exactly one runs at a time. A running thread hands
/// control back at every ``SchedulingPoint`` it reaches — through
/// ``ScheduledTableMemory``, ``ScheduledTLB``, ``ScheduledReaderWriterLock``,
/// an explicit ``yield(at:)``, and, in hosted debug builds, the library's
/// own lock, reclaimer and spin-wait points (`ExplorationHooks`) — and its
/// ``SchedulingPolicy`` picks the next thread. Given the same policy
/// choices, an execution is the same, so a printed ``Schedule`` replays it.
///
/// Blocking and fairness: a thread that reports ``SchedulingPoint/spin``
/// (it waits for another thread) is *parked* and not chosen again until
/// every thread that could run when it spun has taken a step (or finished):
/// a waiting thread yields to all the others, as in CHESS's fair scheduler
/// (Musuvathi, Qadeer, "Fair Stateless Model Checking", PLDI 2008), so two
/// waiters cannot keep starving the thread they both wait for. When every
/// unfinished thread is parked, all of them are woken; `deadlockRounds`
/// spin steps (or such wake-ups) in a row with no other step between them
/// is a deadlock. More than `stepLimit` steps is reported as a livelock, and no
/// step at all for `stallSeconds` as a thread blocked outside the scheduler
/// (an OS lock, a busy loop that does not yield). After such an abort the
/// threads stay parked for good (they cannot be unwound); the execution's
/// objects are leaked.
///
/// Calls from threads that are not this scheduler's logical threads (the
/// test's own thread building the scenario, other tests) are not
/// scheduled: every yield is then a no-op.
// @unchecked Sendable: every mutable property is read and written only with
// `state` locked (a pthread mutex), except the settings written before
// `run()` (`mutations`, `yieldsAtTableEntries`, `bodies`) and only read
// after it; the logical threads are handed control through semaphores,
// which order their memory accesses.
public final class ControlledScheduler: @unchecked Sendable {
    struct State {
        var threads: [ControlledThread] = []
        var running: Int?
        var choices: [Int] = []
        var preemptions = 0
        var steps = 0
        var stalledRounds = 0
        var failure: String?
        var aborted = false
        var started = false
    }

    let policy: SchedulingPolicy
    let state = PThreadLocked(State())
    let done = DispatchSemaphore(value: 0)
    /// Steps after which an execution is a livelock.
    public let stepLimit: Int
    /// Consecutive rounds with every thread parked that make a deadlock.
    public let deadlockRounds: Int
    /// Seconds without any step after which a thread is blocked outside the scheduler.
    public let stallSeconds: Double
    var bodies: [@Sendable () -> Void] = []

    #if SLAT_EXPLORATION_HOOKS
    /// Library defects switched on for this scheduler's threads (hosted
    /// debug builds only).
    public var mutations: Set<ExplorationMutation> = []
    #endif
    /// Whether the library's table-entry points (each load, store or
    /// compare-and-exchange of an entry another thread or the hardware may
    /// touch) are scheduling points (``SchedulingPoint/tableEntry``); when
    /// `false` the smallest step is one `TableMemory.entries(at:)` call.
    /// Set before ``run()``.
    public var yieldsAtTableEntries = false

    /// A scheduler whose choices come from `policy`.
    public init(policy: SchedulingPolicy, stepLimit: Int = 200_000, deadlockRounds: Int = 10_000,
                stallSeconds: Double = 20) {
        self.policy = policy
        self.stepLimit = stepLimit
        self.deadlockRounds = deadlockRounds
        self.stallSeconds = stallSeconds
    }

    /// Adds a logical thread that will run `body`; call before ``run()``.
    /// Thread indices follow the order of the calls, from 0.
    ///
    /// - Throws: ``ControlledSchedulerError/spawnAfterRun`` once ``run()``
    ///   has started (nothing is added).
    public func spawn(_ name: String, _ body: @escaping @Sendable () -> Void) throws(ControlledSchedulerError) {
        let added = state.withLock { state -> Bool in
            if state.started { return false }
            state.threads.append(ControlledThread(index: state.threads.count, name: name, scheduler: self))
            return true
        }
        guard added else { throw .spawnAfterRun }
        bodies.append(body)
    }

    /// Whether the calling thread is one of this scheduler's logical threads.
    public var isControllingCurrentThread: Bool {
        ControlledThread.current?.scheduler === self
    }

    /// The calling logical thread's index, `nil` on other threads.
    public var currentThread: Int? {
        guard let thread = ControlledThread.current, thread.scheduler === self else { return nil }
        return thread.index
    }

    /// Records `message` as the execution's failure (the first one wins);
    /// the execution goes on.
    public func recordFailure(_ message: String) {
        state.withLock { state in
            if state.failure == nil { state.failure = message }
        }
    }

    /// Hands control back at `point`: the policy picks which enabled thread
    /// takes the next step (possibly the caller). A no-op on threads that
    /// are not this scheduler's.
    public func yield(at point: SchedulingPoint) {
        guard let me = ControlledThread.current, me.scheduler === self else { return }
        let next: ControlledThread? = state.withLock { state in
            if state.aborted { return nil }
            state.steps += 1
            stepTaken(by: me, in: &state)
            if point == .spin {
                me.status = .parked
                me.waitingFor = Set(state.threads.filter { $0 !== me && $0.status == .runnable }.map(\.index))
                // Only waiting, nowhere any other step: a deadlock if it lasts.
                state.stalledRounds += 1
                if state.stalledRounds > deadlockRounds {
                    abort(&state, "deadlock: \(state.threads.filter { $0.status != .finished }.map(\.name).joined(separator: ", ")) only wait")
                    return nil
                }
            } else {
                state.stalledRounds = 0
            }
            if state.steps > stepLimit {
                abort(&state, "livelock: more than \(stepLimit) scheduling steps")
                return nil
            }
            return pickNext(&state, previous: me.index)
        }
        guard let next else {
            if state.withLock({ $0.aborted }) { parkForever(me) }
            return
        }
        if next === me { return }
        next.wakeUp.signal()
        me.wakeUp.wait()
        if state.withLock({ $0.aborted }) { parkForever(me) }
    }

    /// Runs the spawned threads to the end under the policy and returns
    /// what happened. Call once.
    public func run() -> ExecutionRecord {
        let threads: [ControlledThread] = state.withLock { state in
            state.started = true
            return state.threads
        }
        for (thread, body) in zip(threads, bodies) {
            let worker = Thread { [self] in
                ControlledThread.setCurrent(thread)
                #if SLAT_EXPLORATION_HOOKS
                ExplorationHooks.install(HookObserver(scheduler: self))
                #endif
                thread.wakeUp.wait()
                if !state.withLock({ $0.aborted }) { body() }
                #if SLAT_EXPLORATION_HOOKS
                ExplorationHooks.install(nil)
                #endif
                finish(thread)
                ControlledThread.setCurrent(nil)
            }
            worker.stackSize = 8 << 20
            worker.start()
        }
        let first: ControlledThread? = state.withLock { state in
            pickNext(&state, previous: nil)
        }
        if let first {
            first.wakeUp.signal()
            var lastSteps = -1
            while done.wait(timeout: .now() + stallSeconds) == .timedOut {
                let stuck: Bool = state.withLock { state in
                    if state.steps == lastSteps {
                        abort(&state, "stall: no scheduling step for \(stallSeconds) s (a thread blocked outside the scheduler)")
                        return true
                    }
                    lastSteps = state.steps
                    return false
                }
                if stuck { break }
            }
        }
        return state.withLock { state in
            ExecutionRecord(choices: state.choices, preemptions: state.preemptions, steps: state.steps,
                            failure: state.failure, completed: !state.aborted)
        }
    }

    func finish(_ thread: ControlledThread) {
        let next: ControlledThread? = state.withLock { state in
            thread.status = .finished
            if state.aborted { return nil }
            state.stalledRounds = 0
            stepTaken(by: thread, in: &state)
            return pickNext(&state, previous: thread.index)
        }
        if let next {
            next.wakeUp.signal()
        } else if state.withLock({ state in !state.aborted && state.threads.allSatisfy { $0.status == .finished } }) {
            done.signal()
        }
    }

    /// `thread` took a step (or finished): parked threads no longer wait
    /// for it, and those that waited for nobody else become runnable.
    /// State locked.
    func stepTaken(by thread: ControlledThread, in state: inout State) {
        for other in state.threads where other.status == .parked && other !== thread {
            other.waitingFor.remove(thread.index)
            if other.waitingFor.isEmpty { other.status = .runnable }
        }
    }

    /// Chooses the next thread; `nil` when all have finished or the
    /// execution was aborted. State locked.
    func pickNext(_ state: inout State, previous: Int?) -> ControlledThread? {
        var enabled = state.threads.filter { $0.status == .runnable }.map(\.index)
        if enabled.isEmpty {
            let parked = state.threads.filter { $0.status == .parked }
            if parked.isEmpty { return nil }
            state.stalledRounds += 1
            if state.stalledRounds > deadlockRounds {
                let names = parked.map(\.name).joined(separator: ", ")
                abort(&state, "deadlock: \(names) wait for each other")
                return nil
            }
            for thread in parked {
                thread.status = .runnable
                thread.waitingFor = []
            }
            enabled = parked.map(\.index)
        }
        let decision = SchedulingDecision(index: state.choices.count, enabled: enabled, previous: previous)
        let choice = policy.choose(decision)
        // A policy is caller code: a choice outside the enabled threads ends
        // the execution as a failure rather than trapping.
        guard enabled.contains(choice) else {
            abort(&state, "the scheduling policy chose thread \(choice), not one of the enabled \(enabled)")
            return nil
        }
        if decision.isPreemption(choosing: choice) { state.preemptions += 1 }
        state.choices.append(choice)
        state.running = choice
        return state.threads[choice]
    }

    func abort(_ state: inout State, _ message: String) {
        if state.failure == nil { state.failure = message }
        state.aborted = true
        done.signal()
    }

    func parkForever(_ thread: ControlledThread) -> Never {
        while true { thread.wakeUp.wait() }
    }
}

#if SLAT_EXPLORATION_HOOKS
/// Forwards the library's exploration points and mutation questions to
/// the scheduler of the thread it is installed on.
final class HookObserver: ExplorationObserver {
    let scheduler: ControlledScheduler
    init(scheduler: ControlledScheduler) { self.scheduler = scheduler }

    func reached(_ point: ExplorationPoint) {
        switch point {
        case .lockAcquire: scheduler.yield(at: .lockAcquire)
        case .lockRelease: scheduler.yield(at: .lockRelease)
        case .readSectionEnter: scheduler.yield(at: .readSectionEnter)
        case .readSectionLeave: scheduler.yield(at: .readSectionLeave)
        case .spin: scheduler.yield(at: .spin)
        case .tableEntry: if scheduler.yieldsAtTableEntries { scheduler.yield(at: .tableEntry) }
        case .pfnCacheResolved: scheduler.yield(at: .custom("pfn cache resolved"))
        }
    }

    func isActive(_ mutation: ExplorationMutation) -> Bool {
        scheduler.mutations.contains(mutation)
    }
}
#endif

/// A ``ControlledScheduler`` call made at the wrong time.
public enum ControlledSchedulerError: Error, Hashable, Sendable {
    /// ``ControlledScheduler/spawn(_:_:)`` after ``ControlledScheduler/run()`` started.
    case spawnAfterRun
}
