#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value behind a pthread mutex.
///
/// SLATSim uses this rather than `Synchronization.Mutex` because
/// ThreadSanitizer understands pthread mutexes, while `Mutex`'s futex-based
/// Linux implementation is invisible to it (every access under it would be
/// reported as a race), and the simulator's concurrency tests run under
/// ThreadSanitizer. Waiters block; they do not spin.
// @unchecked Sendable: `value` is read and written only inside `withLock`,
// between pthread_mutex_lock and pthread_mutex_unlock of `mutex`; the mutex
// itself is allocated once and never moves.
@usableFromInline
final class PThreadLocked<Value>: @unchecked Sendable {
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline var value: Value

    @usableFromInline
    init(_ value: Value) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let status = pthread_mutex_init(mutex, nil)
        // A default mutex initialises without failing on glibc.
        precondition(status == 0, "pthread_mutex_init failed: \(status)")
        self.value = value
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value. Not reentrant.
    @inlinable
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
