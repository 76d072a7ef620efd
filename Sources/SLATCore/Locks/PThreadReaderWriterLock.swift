#if canImport(Glibc)
import Glibc

/// The MMU lock of hosted builds: a `pthread_rwlock_t` configured to prefer
/// writers (`PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP`), so waiting
/// threads sleep in the kernel instead of spinning and a stream of readers
/// cannot starve a writer.
///
/// Only in builds that can import Glibc (not in Embedded builds; use
/// ``SpinningReaderWriterLock`` there).
///
/// Locking contract: see ``ReaderWriterLock``; it is not recursive (a thread
/// holding it shared must not ask for it shared again, or it can deadlock
/// behind a waiting writer). Errors from pthread calls are programmer errors
/// and trap.
///
/// Sendable safety argument (`@unchecked`): the only stored property is an
/// immutable pointer to a `pthread_rwlock_t` in memory this object allocates
/// in `init` and frees in `deinit`, so the lock never moves (pthread objects
/// must not be copied or moved) and outlives every use. All access to that
/// memory goes through the pthread functions, which are thread-safe by
/// specification. Hence sharing the object between threads is safe.
public final class PThreadReaderWriterLock: ReaderWriterLock, @unchecked Sendable {
    private let handle: UnsafeMutablePointer<pthread_rwlock_t>

    /// A lock that nobody holds. Any thread may use it.
    public init() {
        handle = .allocate(capacity: 1)
        var attributes = pthread_rwlockattr_t()
        // glibc's rwlock calls fail only with invalid arguments (these are
        // SLAT's own, valid) or, for the lock calls, when the calling thread
        // breaks the ReaderWriterLock contract (EDEADLK: it holds the lock
        // already; EPERM: it releases what it does not hold), which has no
        // error to return; so each failure stops here.
        var status = pthread_rwlockattr_init(&attributes)
        precondition(status == 0, "pthread_rwlockattr_init failed")
        status = pthread_rwlockattr_setkind_np(
            &attributes, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        precondition(status == 0, "pthread_rwlockattr_setkind_np failed")
        status = pthread_rwlock_init(handle, &attributes)
        precondition(status == 0, "pthread_rwlock_init failed")
        status = pthread_rwlockattr_destroy(&attributes)
        precondition(status == 0, "pthread_rwlockattr_destroy failed")
    }

    deinit {
        // EBUSY: the lock is destroyed while held, a holder outliving the
        // object it holds, which no caller can do through SLAT's APIs.
        let status = pthread_rwlock_destroy(handle)
        precondition(status == 0, "pthread_rwlock_destroy failed (lock still held?)")
        handle.deallocate()
    }

    /// Blocks (sleeping) until the calling thread holds the lock shared.
    public func lockShared() {
        let status = pthread_rwlock_rdlock(handle)
        // Fails only on a breach of the lock's contract (see init).
        precondition(status == 0, "pthread_rwlock_rdlock failed")
    }

    /// Releases one shared hold of the calling thread.
    public func unlockShared() {
        let status = pthread_rwlock_unlock(handle)
        // Fails only on a breach of the lock's contract (see init).
        precondition(status == 0, "pthread_rwlock_unlock failed")
    }

    /// Blocks (sleeping) until the calling thread holds the lock exclusively.
    public func lockExclusive() {
        let status = pthread_rwlock_wrlock(handle)
        // Fails only on a breach of the lock's contract (see init).
        precondition(status == 0, "pthread_rwlock_wrlock failed")
    }

    /// Releases the exclusive hold of the calling thread.
    public func unlockExclusive() {
        let status = pthread_rwlock_unlock(handle)
        // Fails only on a breach of the lock's contract (see init).
        precondition(status == 0, "pthread_rwlock_unlock failed")
    }

    /// Takes the lock shared if that needs no waiting.
    public func tryLockShared() -> Bool {
        let status = pthread_rwlock_tryrdlock(handle)
        // Fails only on a breach of the lock's contract (see init).
        precondition(status == 0 || status == EBUSY, "pthread_rwlock_tryrdlock failed")
        return status == 0
    }

    /// Takes the lock exclusively if nobody holds it.
    public func tryLockExclusive() -> Bool {
        let status = pthread_rwlock_trywrlock(handle)
        // Fails only on a breach of the lock's contract (see init).
        precondition(status == 0 || status == EBUSY, "pthread_rwlock_trywrlock failed")
        return status == 0
    }
}
#endif
