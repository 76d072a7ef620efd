import Synchronization

/// A writer-preferring reader-writer lock whose readers each write only
/// their own cache line (a "big-reader" or per-CPU reader-writer lock): the
/// MMU lock for a fault path that takes it shared on every fault from every
/// vCPU.
///
/// Each reader slot (a per-vCPU index, as for ``EpochReclaimer``) is one
/// word in its own 128-byte block. A reader with a slot announces itself by
/// storing 1 into its word and then checks the writer word; a writer claims
/// the writer word and then waits until every reader word is 0. Both sides
/// store before they load, sequentially consistently, so at least one of
/// them sees the other (the store-buffering pattern): a reader that sees a
/// writer withdraws (stores 0) and waits until the writer is gone. Readers
/// therefore never write a word another reader writes: shared holds from
/// different vCPUs do not bounce a cache line between CPUs, and a shared
/// hold costs one store-load fence instead of two read-modify-writes on a
/// shared word. Writers pay for it: taking the lock exclusively reads every
/// slot, which suits an MMU lock (faults are frequent, zaps rare).
///
/// Callers without a slot use the ``ReaderWriterLock`` methods
/// (``lockShared()`` etc.): they count in one extra shared word, with the
/// same protocol. Writers exclude each other through the writer word;
/// waiting writers keep new readers out, so readers cannot starve a writer.
///
/// Acquiring a hold is an acquire operation and releasing it a release
/// operation: everything written under an exclusive hold is visible to
/// every later holder, shared or exclusive.
///
/// Locking contract: see ``ReaderWriterLock``; it is not recursive. A slot
/// belongs to one thread at a time: at most one shared hold per slot.
/// Waiters spin with ``SpinBackoff`` (yielding the processor when hosted).
///
/// Sendable safety argument (`@unchecked`): the stored properties are
/// immutable after `init`; `words` points at `Atomic` words this object
/// allocates in `init` and frees in `deinit`, and every access to them is
/// atomic.
public final class PerSlotReaderWriterLock: ReaderWriterLock, @unchecked Sendable {
    /// Reader slots; slot indices are `0..<slotCount`.
    public let slotCount: Int
    /// Word `i * wordStride` is slot `i`'s reader word (0 or 1); word
    /// `slotCount * wordStride` counts the shared holders without a slot.
    @usableFromInline let words: UnsafeMutablePointer<Atomic<UInt64>>
    /// 0 when no writer holds or waits for the lock, 1 otherwise.
    @usableFromInline let writer = Atomic<UInt64>(0)

    /// Words per slot: one slot per 128 bytes (a cache line and its
    /// adjacent-line prefetch partner).
    @usableFromInline static var wordStride: Int { 16 }

    /// A lock nobody holds, with `slotCount` reader slots.
    public init(slotCount: Int) {
        precondition(slotCount > 0, "a per-slot lock needs at least one reader slot")
        self.slotCount = slotCount
        let wordCount = (slotCount + 1) * Self.wordStride
        words = UnsafeMutableRawPointer.allocate(byteCount: wordCount * 8, alignment: 128)
            .bindMemory(to: Atomic<UInt64>.self, capacity: wordCount)
        for i in 0...slotCount { (words + i * Self.wordStride).initialize(to: Atomic(0)) }
    }

    deinit {
        for i in 0...slotCount { (words + i * Self.wordStride).deinitialize(count: 1) }
        UnsafeMutableRawPointer(words).deallocate()
    }

    /// The counter of slot-less shared holders.
    @inlinable var unslottedReaders: UnsafeMutablePointer<Atomic<UInt64>> { words + slotCount &* Self.wordStride }

    // MARK: Readers with a slot

    /// Blocks until the calling thread, using reader slot `slot`, holds the
    /// lock shared; waits while a writer holds it or waits for it. Touches
    /// only `slot`'s word unless a writer is there.
    @inlinable @inline(__always)
    public func lockShared(slot: Int) {
        if !tryLockShared(slot: slot) { waitForShared(slot: slot) }
    }

    /// The contended part of ``lockShared(slot:)``, kept out of line so the
    /// uncontended path inlines into the caller.
    @usableFromInline @inline(never)
    func waitForShared(slot: Int) {
        var backoff = SpinBackoff()
        while true {
            if writer.load(ordering: .relaxed) == 0 && tryLockShared(slot: slot) { return }
            backoff.wait()
        }
    }

    /// Takes the lock shared for reader slot `slot` unless a writer holds it
    /// or waits for it; returns whether it did.
    @inlinable @inline(__always)
    public func tryLockShared(slot: Int) -> Bool {
        precondition(slot >= 0 && slot < slotCount, "reader slot out of range")
        let word = words + slot &* Self.wordStride
        // Announce, then look for a writer; the writer does the converse.
        word.pointee.store(1, ordering: .sequentiallyConsistent)
        if writer.load(ordering: .sequentiallyConsistent) == 0 { return true }
        word.pointee.store(0, ordering: .releasing)
        return false
    }

    /// Releases the shared hold of reader slot `slot`.
    @inlinable @inline(__always)
    public func unlockShared(slot: Int) {
        precondition(slot >= 0 && slot < slotCount, "reader slot out of range")
        (words + slot &* Self.wordStride).pointee.store(0, ordering: .releasing)
    }

    // MARK: ReaderWriterLock (readers without a slot, writers)

    /// Blocks until the calling thread holds the lock shared without a slot
    /// (counted in a shared word); waits while a writer holds or waits.
    @inlinable
    public func lockShared() {
        if tryLockShared() { return }
        var backoff = SpinBackoff()
        while true {
            if writer.load(ordering: .relaxed) == 0 && tryLockShared() { return }
            backoff.wait()
        }
    }

    /// Takes the lock shared without a slot unless a writer holds it or
    /// waits for it.
    @inlinable
    public func tryLockShared() -> Bool {
        let counter = unslottedReaders
        counter.pointee.wrappingAdd(1, ordering: .sequentiallyConsistent)
        if writer.load(ordering: .sequentiallyConsistent) == 0 { return true }
        counter.pointee.wrappingSubtract(1, ordering: .releasing)
        return false
    }

    /// Releases one slot-less shared hold.
    @inlinable
    public func unlockShared() {
        let old = unslottedReaders.pointee.wrappingSubtract(1, ordering: .releasing).oldValue
        precondition(old != 0, "unlockShared without a shared hold")
    }

    /// Blocks until the calling thread holds the lock exclusively. Once it
    /// has claimed the writer word, new readers stay out while it waits for
    /// the current ones to leave.
    @inlinable
    public func lockExclusive() {
        var backoff = SpinBackoff()
        while !claimWriter() { backoff.wait() }
        backoff = SpinBackoff()
        while hasReaders() { backoff.wait() }
    }

    /// Takes the lock exclusively if nobody holds it in either mode.
    @inlinable
    public func tryLockExclusive() -> Bool {
        if !claimWriter() { return false }
        if hasReaders() {
            writer.store(0, ordering: .releasing)
            return false
        }
        return true
    }

    /// Releases the exclusive hold of the calling thread.
    @inlinable
    public func unlockExclusive() {
        let old = writer.exchange(0, ordering: .releasing)
        precondition(old == 1, "unlockExclusive without the exclusive hold")
    }

    /// Becomes the one writer (holding or waiting) if there is none.
    @inlinable
    func claimWriter() -> Bool {
        if writer.load(ordering: .relaxed) != 0 { return false }
        return writer.compareExchange(expected: 0, desired: 1, ordering: .sequentiallyConsistent).exchanged
    }

    /// Whether a reader of any kind holds the lock (the loads acquire: a
    /// reader seen gone has published what it did under its hold).
    @inlinable
    func hasReaders() -> Bool {
        for slot in 0...slotCount where words[slot &* Self.wordStride].load(ordering: .sequentiallyConsistent) != 0 {
            return true
        }
        return false
    }
}
