/// A lock that admits many holders in *shared* mode or one in *exclusive* mode.
///
/// This is the shape of KVM's MMU lock: page faults take it shared and run
/// concurrently (every entry change they make is a compare-and-exchange),
/// while zaps, teardown and other whole-range changes take it exclusive.
///
/// Locking contract: every method may be called from any thread. A thread
/// must not take the lock again while it holds it, in either mode (the locks
/// are not recursive; a shared holder that asks again can deadlock behind a
/// waiting writer), and must release it in the mode it took it. Conforming
/// types are classes so that the lock has a stable identity shared by every
/// holder; they must be safe to use from many threads at once.
public protocol ReaderWriterLock: AnyObject, Sendable {
    /// Blocks until the lock is held shared by the calling thread.
    func lockShared()
    /// Releases one shared hold taken by the calling thread.
    func unlockShared()
    /// Blocks until the lock is held exclusively by the calling thread.
    func lockExclusive()
    /// Releases the exclusive hold taken by the calling thread.
    func unlockExclusive()
    /// Takes the lock shared if that is possible without waiting; returns
    /// whether it did (then the caller must call ``unlockShared()``).
    func tryLockShared() -> Bool
    /// Takes the lock exclusively if that is possible without waiting;
    /// returns whether it did (then the caller must call ``unlockExclusive()``).
    func tryLockExclusive() -> Bool
}

extension ReaderWriterLock {
    /// Runs `body` with the lock held shared and releases it afterwards, also
    /// when `body` throws. `body` must not take this lock again.
    @inlinable
    public func withShared<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lockShared()
        defer { unlockShared() }
        return try body()
    }

    /// Runs `body` with the lock held exclusively and releases it afterwards,
    /// also when `body` throws. `body` must not take this lock again.
    @inlinable
    public func withExclusive<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lockExclusive()
        defer { unlockExclusive() }
        return try body()
    }
}
