import Synchronization

/// A writer-preferring reader-writer lock built from one atomic word; needs
/// nothing from an operating system, so it is the MMU lock of Embedded builds.
///
/// The word holds the number of shared holders (bits 0–31), an
/// exclusive-holder bit (32) and the number of threads waiting to take the
/// lock exclusively (bits 33–63). A thread asking for shared access waits
/// while a writer holds the lock *or waits for it*, so a continuous stream of
/// readers cannot starve a writer: once a writer announces itself, new readers
/// queue behind it and the writer enters as soon as the current readers leave.
/// Writers are not ordered among themselves.
///
/// Acquiring a hold is an acquire operation and releasing it a release
/// operation, so everything written under an exclusive hold is visible to
/// every later holder, shared or exclusive.
///
/// Locking contract: see ``ReaderWriterLock``; it is not recursive. Waiters
/// spin with ``SpinBackoff`` (yielding the processor when hosted). At most
/// 2^32 − 1 shared holders at once.
public final class SpinningReaderWriterLock: ReaderWriterLock {
    @usableFromInline let word: Atomic<UInt64>

    @usableFromInline static var readerMask: UInt64 { 0xFFFF_FFFF }
    @usableFromInline static var writerHeld: UInt64 { 1 << 32 }
    @usableFromInline static var writerWaiting: UInt64 { 1 << 33 }
    /// Bits that keep new readers out: a writer holding or waiting.
    @usableFromInline static var writerBits: UInt64 { ~readerMask }

    /// A lock that nobody holds. Any thread may use it.
    public init() { word = Atomic(0) }

    /// Blocks until the calling thread holds the lock shared; waits while a
    /// writer holds it or is waiting for it.
    @inlinable
    public func lockShared() {
        var backoff = SpinBackoff()
        while !tryLockShared() { backoff.wait() }
    }

    /// Takes the lock shared unless a writer holds it or waits for it.
    @inlinable
    public func tryLockShared() -> Bool {
        var current = word.load(ordering: .relaxed)
        while current & Self.writerBits == 0 {
            // Not reachable: the reader count has more bits than a process
            // has threads, and a thread holds the lock shared at most once.
            precondition(current & Self.readerMask != Self.readerMask, "too many shared holders")
            let (exchanged, seen) = word.compareExchange(
                expected: current, desired: current &+ 1,
                successOrdering: .acquiring, failureOrdering: .relaxed)
            if exchanged { return true }
            current = seen
        }
        return false
    }

    /// Releases one shared hold of the calling thread.
    @inlinable
    public func unlockShared() {
        let old = word.wrappingSubtract(1, ordering: .releasing).oldValue
        // The lock's own contract (ReaderWriterLock: release only what the
        // calling thread took). SLAT pairs every take with its release
        // (withShared/withExclusive or a defer), and an unbalanced release
        // by a caller's code has no error to return — going on would let a
        // writer in beside readers and corrupt the tables, so it stops here.
        precondition(old & Self.readerMask != 0, "unlockShared without a shared hold")
    }

    /// Blocks until the calling thread holds the lock exclusively. While it
    /// waits, new shared holders are kept out.
    @inlinable
    public func lockExclusive() {
        word.wrappingAdd(Self.writerWaiting, ordering: .relaxed)
        var backoff = SpinBackoff()
        while true {
            let current = word.load(ordering: .relaxed)
            if current & (Self.readerMask | Self.writerHeld) == 0 {
                // Leave the waiting count and become the holder in one step.
                let desired = (current &- Self.writerWaiting) | Self.writerHeld
                if word.compareExchange(
                    expected: current, desired: desired,
                    successOrdering: .acquiring, failureOrdering: .relaxed
                ).exchanged { return }
                continue
            }
            backoff.wait()
        }
    }

    /// Takes the lock exclusively if nobody holds it in either mode (threads
    /// merely waiting for it do not prevent this).
    @inlinable
    public func tryLockExclusive() -> Bool {
        var current = word.load(ordering: .relaxed)
        while current & (Self.readerMask | Self.writerHeld) == 0 {
            let (exchanged, seen) = word.compareExchange(
                expected: current, desired: current | Self.writerHeld,
                successOrdering: .acquiring, failureOrdering: .relaxed)
            if exchanged { return true }
            current = seen
        }
        return false
    }

    /// Releases the exclusive hold of the calling thread.
    @inlinable
    public func unlockExclusive() {
        let old = word.wrappingSubtract(Self.writerHeld, ordering: .releasing).oldValue
        // The lock's own contract (ReaderWriterLock: release only what the
        // calling thread took). SLAT pairs every take with its release
        // (withShared/withExclusive or a defer), and an unbalanced release
        // by a caller's code has no error to return — going on would let a
        // writer in beside readers and corrupt the tables, so it stops here.
        precondition(old & Self.writerHeld != 0, "unlockExclusive without the exclusive hold")
    }
}
