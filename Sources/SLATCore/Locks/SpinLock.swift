import Synchronization

/// Mutual exclusion on one atomic word: the lock for short critical sections
/// that never block (list and counter updates), usable in Embedded Swift.
///
/// It is non-copyable so that every user refers to the one stored word; keep
/// it as a `let` in a class (or another non-copyable owner).
///
/// Locking contract: any thread may call ``lock()``; the holder must call
/// ``unlock()`` exactly once and must not take the lock again meanwhile (it is
/// not recursive). Waiters spin with ``SpinBackoff`` (yielding when hosted).
public struct SpinLock: ~Copyable, Sendable {
    @usableFromInline let held: Atomic<Bool>

    /// A lock that nobody holds.
    @inlinable
    public init() { held = Atomic(false) }

    /// Blocks until the calling thread holds the lock.
    @inlinable
    public func lock() {
        if tryLock() { return }
        var backoff = SpinBackoff()
        while true {
            if !held.load(ordering: .relaxed) && tryLock() { return }
            backoff.wait()
        }
    }

    /// Takes the lock if nobody holds it; returns whether the caller now holds it.
    @inlinable
    public func tryLock() -> Bool {
        held.compareExchange(
            expected: false, desired: true,
            successOrdering: .acquiring, failureOrdering: .relaxed
        ).exchanged
    }

    /// Releases the lock held by the calling thread.
    @inlinable
    public func unlock() {
        let wasHeld = held.exchange(false, ordering: .releasing)
        // The lock's own contract (ReaderWriterLock: release only what the
        // calling thread took). SLAT pairs every take with its release
        // (withShared/withExclusive or a defer), and an unbalanced release
        // by a caller's code has no error to return — going on would let a
        // writer in beside readers and corrupt the tables, so it stops here.
        precondition(wasHeld, "SpinLock unlocked while not held")
    }

    /// Runs `body` holding the lock and releases it afterwards, also when
    /// `body` throws. `body` must not take this lock again.
    @inlinable
    public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body()
    }
}
