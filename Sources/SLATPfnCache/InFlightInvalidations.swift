#if canImport(Glibc)
import Glibc
#endif
import SLATCore

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
/// Locking contract: internally locked by one pthread mutex; every method may
/// be called from any thread; none calls out. ``waitUntilClear(of:)`` sleeps
/// with the mutex released.
///
/// Sendable safety argument (`@unchecked`): the mutable stored properties
/// (`count`, `sequence`, `hullStart`, `hullEnd`) are only read or written
/// with `mutex` held; `mutex` and `condition` point to pthread objects this
/// object allocates in `init` and destroys in `deinit`, so they never move
/// and outlive every use, and pthread functions are thread-safe.
final class InFlightInvalidations: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var count: UInt64 = 0
    private var sequence: UInt64 = 0
    private var hullStart: UInt64 = 0
    private var hullEnd: UInt64 = 0

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

    /// Counts an invalidation of `range` in flight and widens the hull.
    /// Called before the caches covering the range are visited.
    func begin(_ range: HostVirtualRange) {
        locked {
            precondition(count != UInt64.max, "too many invalidations in flight")
            if count == 0 {
                hullStart = range.start.rawValue
                hullEnd = range.end.rawValue
            } else {
                hullStart = min(hullStart, range.start.rawValue)
                hullEnd = max(hullEnd, range.end.rawValue)
            }
            count &+= 1
        }
    }

    /// Ends one invalidation: bumps the sequence and the count down; at zero
    /// resets the hull and wakes every waiting refresh. Called after the host
    /// change is visible.
    func end() {
        locked {
            precondition(count != 0, "invalidation end without a start")
            sequence &+= 1
            count &-= 1
            if count == 0 {
                hullStart = 0
                hullEnd = 0
                let status = pthread_cond_broadcast(condition)
                precondition(status == 0, "pthread_cond_broadcast failed")
            }
        }
    }

    /// The sequence now (the legacy refresh's snapshot).
    var currentSequence: UInt64 { locked { sequence } }

    /// Invalidations in flight now.
    var inFlightCount: UInt64 { locked { count } }

    /// The legacy retry test: any invalidation in flight, anywhere, or one
    /// ended since `snapshot`.
    func anyActivity(since snapshot: UInt64) -> Bool {
        locked { count != 0 || sequence != snapshot }
    }

    /// Whether an in-flight invalidation may cover `address` (it is inside
    /// the hull).
    func covers(_ address: HostVirtualAddress) -> Bool {
        locked { coversLocked(address) }
    }

    private func coversLocked(_ address: HostVirtualAddress) -> Bool {
        count != 0 && hullStart <= address.rawValue && address.rawValue < hullEnd
    }

    /// Returns at once when no in-flight invalidation may cover `address`;
    /// otherwise sleeps until the in-flight count has dropped to zero (or the
    /// hull no longer covers it). Returns whether it slept.
    func waitUntilClear(of address: HostVirtualAddress) -> Bool {
        locked {
            guard coversLocked(address) else { return false }
            repeat {
                let status = pthread_cond_wait(condition, mutex)
                precondition(status == 0, "pthread_cond_wait failed")
            } while coversLocked(address)
            return true
        }
    }
}
