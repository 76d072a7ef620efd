#if canImport(Glibc)
import Glibc
#endif
import SLATCore
import Synchronization

/// The notifier state pfn caches check, in host-virtual space (KVM keeps the
/// same next to, and separate from, the guest-frame tracker the MMU uses,
/// because caches may be bound to host addresses no memslot covers):
/// - the number of invalidations started and not yet ended;
/// - the merged range (hull) of every invalidation started since that count
///   last was zero — reset (empty) when it drops back to zero, so the hull
///   is empty exactly when nothing is in flight;
/// - a sequence bumped by every end;
/// - a condition signalled when the count drops to zero, on which a
///   range-tracked refresh sleeps instead of spinning.
///
/// A hull, not a list: invalidations on both sides of a cache's address make
/// the hull cover it, and if such invalidations keep overlapping so that the
/// count never reaches zero, a refresh of that address keeps waiting. That is
/// the price of the one-range design (KVM's gfn-to-pfn cache, virt/kvm/pfncache.c); invalidations all on one
/// side of the address never hold it up.
///
/// Locking contract: every method may be called from any thread; none calls
/// out. Writers (`begin`/`end`) serialise on a pthread mutex and publish
/// through two sequence locks, each on its own cache lines: the count and
/// sequence, rewritten by every `begin` and `end`; and the hull, rewritten
/// only when it changes (an invalidation that widens it, the first after a
/// quiet spell, the end that brings the count to zero). A storm whose
/// invalidations stay inside the hull therefore never touches the hull's
/// line, and a range-tracked refresh — which reads only the hull
/// (``covers(_:)``, ``waitUntilClear(of:)``) — neither retries nor misses
/// in its cache because of it. The legacy checks (``anyActivity(since:)``,
/// ``currentSequence``) read the count and sequence. No check takes a lock;
/// only ``waitUntilClear(of:)`` takes the mutex, to sleep on the condition
/// (with the mutex released).
///
/// Sendable safety argument (`@unchecked`): the stored properties are
/// atomics (written only with `mutex` held), padding never accessed, and two
/// pointers to pthread objects this object allocates in `init` and destroys
/// in `deinit`, so they never move and outlive every use; pthread functions
/// are thread-safe.
final class InFlightInvalidations: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    /// Refreshes sleeping on `condition` (changed only with `mutex` held).
    private let sleepers = Atomic<UInt64>(0)
    /// Sequence-lock version of the count and sequence: odd while a writer
    /// updates them.
    private let activityVersion = Atomic<UInt64>(0)
    private let countWord = Atomic<UInt64>(0)
    private let sequenceWord = Atomic<UInt64>(0)
    /// Keeps the hull's words off the cache lines that every `begin` and
    /// `end` writes.
    private let separation = CacheLineGap()
    /// Sequence-lock version of the hull: odd while a writer updates it.
    private let hullVersion = Atomic<UInt64>(0)
    private let hullStartWord = Atomic<UInt64>(0)
    private let hullEndWord = Atomic<UInt64>(0)
    private let trailingSeparation = CacheLineGap()

    /// One consistent reading of the count and sequence.
    struct Activity {
        var count: UInt64
        var sequence: UInt64
    }

    /// One consistent reading of the hull; empty (`start == end == 0`)
    /// exactly when no invalidation is in flight.
    struct Hull: Equatable {
        var start: UInt64
        var end: UInt64

        static var empty: Hull { Hull(start: 0, end: 0) }

        /// Whether an in-flight invalidation may cover `address`.
        func covers(_ address: HostVirtualAddress) -> Bool {
            start <= address.rawValue && address.rawValue < end
        }
    }

    init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        var status = pthread_mutex_init(mutex, nil)
        // A default mutex and condition initialise without failing on glibc;
        // the lock, wait and broadcast calls below fail only for an invalid
        // object, and these are this object's own.
        precondition(status == 0, "pthread_mutex_init failed")
        status = pthread_cond_init(condition, nil)
        precondition(status == 0, "pthread_cond_init failed")
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    private func locked<R>(_ body: () -> R) -> R {
        let status = pthread_mutex_lock(mutex)
        precondition(status == 0, "pthread_mutex_lock failed")
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    // MARK: Writers (with `mutex` held)

    private func lockedActivity() -> Activity {
        Activity(count: countWord.load(ordering: .relaxed), sequence: sequenceWord.load(ordering: .relaxed))
    }

    private func lockedHull() -> Hull {
        Hull(start: hullStartWord.load(ordering: .relaxed), end: hullEndWord.load(ordering: .relaxed))
    }

    /// Publishes `activity` as one sequence-lock write.
    private func publish(_ activity: Activity) {
        let start = activityVersion.load(ordering: .relaxed)
        activityVersion.store(start &+ 1, ordering: .relaxed)
        // Orders the odd version before the data stores.
        atomicMemoryFence(ordering: .releasing)
        countWord.store(activity.count, ordering: .relaxed)
        sequenceWord.store(activity.sequence, ordering: .relaxed)
        activityVersion.store(start &+ 2, ordering: .releasing)
    }

    /// Publishes `hull` as one sequence-lock write.
    private func publish(_ hull: Hull) {
        let start = hullVersion.load(ordering: .relaxed)
        hullVersion.store(start &+ 1, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
        hullStartWord.store(hull.start, ordering: .relaxed)
        hullEndWord.store(hull.end, ordering: .relaxed)
        hullVersion.store(start &+ 2, ordering: .releasing)
    }

    /// Counts an invalidation of `range` in flight and widens the hull.
    /// Called before the caches covering the range are visited.
    func begin(_ range: HostVirtualRange) {
        locked {
            var activity = lockedActivity()
            // Not reachable: 2^64 - 1 invalidations cannot be in flight.
            precondition(activity.count != UInt64.max, "too many invalidations in flight")
            let hull = lockedHull()
            var widened = hull
            if activity.count == 0 {
                widened = Hull(start: range.start.rawValue, end: range.end.rawValue)
            } else {
                widened.start = min(hull.start, range.start.rawValue)
                widened.end = max(hull.end, range.end.rawValue)
            }
            // Inside the hull already: its words stay as they are (they were
            // written, under this mutex, by an invalidation still in flight).
            if widened != hull { publish(widened) }
            activity.count &+= 1
            publish(activity)
        }
    }

    /// Ends one invalidation: bumps the sequence and the count down; at zero
    /// empties the hull and wakes every waiting refresh (the broadcast is
    /// skipped when none sleeps). Called after the host change is visible.
    func end() {
        locked {
            var activity = lockedActivity()
            // Internal: begin and end are called only by the registry's
            // notifier listener, always as a pair for one event.
            precondition(activity.count != 0, "invalidation end without a start")
            activity.sequence &+= 1
            activity.count &-= 1
            publish(activity)
            if activity.count == 0 {
                publish(Hull.empty)
                if sleepers.load(ordering: .relaxed) != 0 {
                    let status = pthread_cond_broadcast(condition)
                    precondition(status == 0, "pthread_cond_broadcast failed")
                }
            }
        }
    }

    // MARK: Lock-free readers

    /// A consistent reading of the count and sequence without the mutex
    /// (sequence-lock read side). The acquiring loads order whatever the
    /// caller reads next (the host page map) after it.
    func activity() -> Activity {
        var backoff = SpinBackoff()
        while true {
            let before = activityVersion.load(ordering: .acquiring)
            if before & 1 == 0 {
                let activity = Activity(
                    count: countWord.load(ordering: .relaxed), sequence: sequenceWord.load(ordering: .relaxed))
                // Orders the data loads before the re-check.
                atomicMemoryFence(ordering: .acquiring)
                if activityVersion.load(ordering: .relaxed) == before { return activity }
            }
            backoff.wait()
        }
    }

    /// A consistent reading of the hull without the mutex, adding to
    /// `retries` each re-read forced by a writer.
    func hull(retries: inout UInt64) -> Hull {
        var backoff = SpinBackoff()
        while true {
            let before = hullVersion.load(ordering: .acquiring)
            if before & 1 == 0 {
                let hull = Hull(start: hullStartWord.load(ordering: .relaxed), end: hullEndWord.load(ordering: .relaxed))
                atomicMemoryFence(ordering: .acquiring)
                if hullVersion.load(ordering: .relaxed) == before { return hull }
            }
            retries &+= 1
            backoff.wait()
        }
    }

    /// The sequence now (the legacy refresh's snapshot). Lock-free.
    var currentSequence: UInt64 { activity().sequence }

    /// Invalidations in flight now. Lock-free.
    var inFlightCount: UInt64 { activity().count }

    /// The legacy retry test: any invalidation in flight, anywhere, or one
    /// ended since `sequence`. Lock-free.
    func anyActivity(since sequence: UInt64) -> Bool {
        let activity = activity()
        return activity.count != 0 || activity.sequence != sequence
    }

    /// Whether an in-flight invalidation may cover `address` (it is inside
    /// the hull). Lock-free.
    func covers(_ address: HostVirtualAddress) -> Bool {
        var retries: UInt64 = 0
        return hull(retries: &retries).covers(address)
    }

    /// What ``waitUntilClear(of:)`` did.
    struct WaitOutcome {
        /// It slept on the condition.
        var slept: Bool
        /// Lock-free reads of the hull repeated because a writer was
        /// publishing it.
        var snapshotRetries: UInt64
    }

    /// Returns at once when no in-flight invalidation may cover `address`
    /// (lock-free: the hull only); otherwise sleeps until the in-flight
    /// count has dropped to zero (or the hull no longer covers it).
    func waitUntilClear(of address: HostVirtualAddress) -> WaitOutcome {
        var retries: UInt64 = 0
        guard hull(retries: &retries).covers(address) else {
            return WaitOutcome(slept: false, snapshotRetries: retries)
        }
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        // Under a controlled scheduler a sleep would stop every thread: wait
        // at its spin points instead.
        if ExplorationHooks.spin() {
            while hull(retries: &retries).covers(address) { _ = ExplorationHooks.spin() }
            return WaitOutcome(slept: true, snapshotRetries: retries)
        }
        #endif
        let slept = locked {
            guard lockedHull().covers(address) else { return false }
            sleepers.wrappingAdd(1, ordering: .relaxed)
            repeat {
                let status = pthread_cond_wait(condition, mutex)
                precondition(status == 0, "pthread_cond_wait failed")
            } while lockedHull().covers(address)
            sleepers.wrappingSubtract(1, ordering: .relaxed)
            return true
        }
        return WaitOutcome(slept: slept, snapshotRetries: retries)
    }
}
