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
///   last was zero — reset when it drops back to zero;
/// - a sequence bumped by every end;
/// - a condition signalled when the count drops to zero, on which a
///   range-tracked refresh sleeps instead of spinning.
///
/// A hull, not a list: invalidations on both sides of a cache's address make
/// the hull cover it, and if such invalidations keep overlapping so that the
/// count never reaches zero, a refresh of that address keeps waiting. That is
/// the price of the one-range design (seed 001); invalidations all on one
/// side of the address never hold it up.
///
/// Locking contract: every method may be called from any thread; none calls
/// out. Writers (`begin`/`end`) serialise on a pthread mutex and publish the
/// four words through a sequence lock, so the checks a refresh makes when
/// nothing covers its address (``covers(_:)``, ``anyActivity(since:)``,
/// ``currentSequence``) take no lock and never queue behind a storm of
/// writers. Only ``waitUntilClear(of:)`` takes the mutex, to sleep on the
/// condition (with the mutex released).
///
/// Sendable safety argument (`@unchecked`): the stored properties are
/// atomics (written only with `mutex` held) and two pointers to pthread
/// objects this object allocates in `init` and destroys in `deinit`, so they
/// never move and outlive every use; pthread functions are thread-safe.
final class InFlightInvalidations: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    /// Sequence-lock version: odd while a writer updates the words below.
    private let version = Atomic<UInt64>(0)
    private let countWord = Atomic<UInt64>(0)
    private let sequenceWord = Atomic<UInt64>(0)
    private let hullStartWord = Atomic<UInt64>(0)
    private let hullEndWord = Atomic<UInt64>(0)
    /// Refreshes sleeping on `condition` (changed only with `mutex` held).
    private let sleepers = Atomic<UInt64>(0)

    /// One consistent reading of the words.
    struct State {
        var count: UInt64
        var sequence: UInt64
        var hullStart: UInt64
        var hullEnd: UInt64

        /// Whether an in-flight invalidation may cover `address`.
        func covers(_ address: HostVirtualAddress) -> Bool {
            count != 0 && hullStart <= address.rawValue && address.rawValue < hullEnd
        }
    }

    init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        var status = pthread_mutex_init(mutex, nil)
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

    /// The words as the mutex holder sees them (call with `mutex` held).
    private func lockedState() -> State {
        State(
            count: countWord.load(ordering: .relaxed), sequence: sequenceWord.load(ordering: .relaxed),
            hullStart: hullStartWord.load(ordering: .relaxed), hullEnd: hullEndWord.load(ordering: .relaxed))
    }

    /// Publishes `state` as one sequence-lock write (call with `mutex` held).
    private func publish(_ state: State) {
        let start = version.load(ordering: .relaxed)
        version.store(start &+ 1, ordering: .relaxed)
        // Orders the odd version before the data stores.
        atomicMemoryFence(ordering: .releasing)
        countWord.store(state.count, ordering: .relaxed)
        sequenceWord.store(state.sequence, ordering: .relaxed)
        hullStartWord.store(state.hullStart, ordering: .relaxed)
        hullEndWord.store(state.hullEnd, ordering: .relaxed)
        version.store(start &+ 2, ordering: .releasing)
    }

    /// A consistent reading without the mutex (sequence-lock read side). The
    /// acquiring loads order whatever the caller reads next (the host page
    /// map) after it.
    func snapshot() -> State {
        var retries: UInt64 = 0
        return snapshot(retries: &retries)
    }

    /// ``snapshot()``, adding to `retries` each re-read forced by a writer.
    func snapshot(retries: inout UInt64) -> State {
        var backoff = SpinBackoff()
        while true {
            let before = version.load(ordering: .acquiring)
            if before & 1 == 0 {
                let state = State(
                    count: countWord.load(ordering: .relaxed), sequence: sequenceWord.load(ordering: .relaxed),
                    hullStart: hullStartWord.load(ordering: .relaxed), hullEnd: hullEndWord.load(ordering: .relaxed))
                // Orders the data loads before the re-check.
                atomicMemoryFence(ordering: .acquiring)
                if version.load(ordering: .relaxed) == before { return state }
            }
            retries &+= 1
            backoff.wait()
        }
    }

    /// Counts an invalidation of `range` in flight and widens the hull.
    /// Called before the caches covering the range are visited.
    func begin(_ range: HostVirtualRange) {
        locked {
            var state = lockedState()
            precondition(state.count != UInt64.max, "too many invalidations in flight")
            if state.count == 0 {
                state.hullStart = range.start.rawValue
                state.hullEnd = range.end.rawValue
            } else {
                state.hullStart = min(state.hullStart, range.start.rawValue)
                state.hullEnd = max(state.hullEnd, range.end.rawValue)
            }
            state.count &+= 1
            publish(state)
        }
    }

    /// Ends one invalidation: bumps the sequence and the count down; at zero
    /// resets the hull and wakes every waiting refresh (the broadcast is
    /// skipped when none sleeps). Called after the host change is visible.
    func end() {
        locked {
            var state = lockedState()
            precondition(state.count != 0, "invalidation end without a start")
            state.sequence &+= 1
            state.count &-= 1
            if state.count == 0 {
                state.hullStart = 0
                state.hullEnd = 0
            }
            publish(state)
            if state.count == 0, sleepers.load(ordering: .relaxed) != 0 {
                let status = pthread_cond_broadcast(condition)
                precondition(status == 0, "pthread_cond_broadcast failed")
            }
        }
    }

    /// The sequence now (the legacy refresh's snapshot). Lock-free.
    var currentSequence: UInt64 { snapshot().sequence }

    /// Invalidations in flight now. Lock-free.
    var inFlightCount: UInt64 { snapshot().count }

    /// The legacy retry test: any invalidation in flight, anywhere, or one
    /// ended since `sequence`. Lock-free.
    func anyActivity(since sequence: UInt64) -> Bool {
        let state = snapshot()
        return state.count != 0 || state.sequence != sequence
    }

    /// Whether an in-flight invalidation may cover `address` (it is inside
    /// the hull). Lock-free.
    func covers(_ address: HostVirtualAddress) -> Bool {
        snapshot().covers(address)
    }

    /// What ``waitUntilClear(of:)`` did.
    struct WaitOutcome {
        /// It slept on the condition.
        var slept: Bool
        /// Lock-free reads repeated because a writer was publishing.
        var snapshotRetries: UInt64
    }

    /// Returns at once when no in-flight invalidation may cover `address`
    /// (lock-free); otherwise sleeps until the in-flight count has dropped to
    /// zero (or the hull no longer covers it).
    func waitUntilClear(of address: HostVirtualAddress) -> WaitOutcome {
        var retries: UInt64 = 0
        guard snapshot(retries: &retries).covers(address) else {
            return WaitOutcome(slept: false, snapshotRetries: retries)
        }
        let slept = locked {
            guard lockedState().covers(address) else { return false }
            sleepers.wrappingAdd(1, ordering: .relaxed)
            repeat {
                let status = pthread_cond_wait(condition, mutex)
                precondition(status == 0, "pthread_cond_wait failed")
            } while lockedState().covers(address)
            sleepers.wrappingSubtract(1, ordering: .relaxed)
            return true
        }
        return WaitOutcome(slept: slept, snapshotRetries: retries)
    }
}
