import SLATCore

/// A `ReaderWriterLock` for code under a ``ControlledScheduler``: yields
/// before each attempt to take it and after each release, and waits for it
/// by try-lock and ``SchedulingPoint/spin``, so a thread that cannot take
/// it lets the holder run instead of blocking the scheduler. On threads
/// the scheduler does not control it is `Base` unchanged.
public final class ScheduledReaderWriterLock<Base: ReaderWriterLock>: ReaderWriterLock {
    /// The lock itself.
    public let base: Base
    /// The scheduler the lock's waits yield to.
    public let scheduler: ControlledScheduler

    /// Wraps `base` for `scheduler`.
    public init(wrapping base: Base, scheduler: ControlledScheduler) {
        self.base = base
        self.scheduler = scheduler
    }

    /// Takes `base` shared, yielding while it cannot.
    public func lockShared() {
        guard scheduler.isControllingCurrentThread else { return base.lockShared() }
        scheduler.yield(at: .lockAcquire)
        while !base.tryLockShared() { scheduler.yield(at: .spin) }
    }

    /// Releases a shared hold, then yields.
    public func unlockShared() {
        base.unlockShared()
        scheduler.yield(at: .lockRelease)
    }

    /// Takes `base` exclusively, yielding while it cannot.
    public func lockExclusive() {
        guard scheduler.isControllingCurrentThread else { return base.lockExclusive() }
        scheduler.yield(at: .lockAcquire)
        while !base.tryLockExclusive() { scheduler.yield(at: .spin) }
    }

    /// Releases the exclusive hold, then yields.
    public func unlockExclusive() {
        base.unlockExclusive()
        scheduler.yield(at: .lockRelease)
    }

    /// Yields, then tries `base` shared.
    public func tryLockShared() -> Bool {
        scheduler.yield(at: .lockAcquire)
        return base.tryLockShared()
    }

    /// Yields, then tries `base` exclusively.
    public func tryLockExclusive() -> Bool {
        scheduler.yield(at: .lockAcquire)
        return base.tryLockExclusive()
    }
}
