import Synchronization

/// A writer-preferring reader-writer lock whose readers each write only
/// their own cache line (a "big-reader" or per-CPU reader-writer lock): the
/// MMU lock for a fault path that takes it shared on every fault from every
/// vCPU.
///
/// Each reader slot (a per-vCPU index, as for ``EpochReclaimer``) is one
/// word in its own 128-byte block (``ReaderSlotWords``). A reader with a
/// slot announces itself by setting ``ReaderSlotWords/holdsShared`` in its
/// word and then checks the writer word; a writer claims the writer word
/// and then waits until no slot word has that bit. Both sides
/// store before they load, sequentially consistently, so at least one of
/// them sees the other (the store-buffering pattern): a reader that sees a
/// writer withdraws (stores 0) and waits until the writer is gone. Readers
/// therefore never write a word another reader writes: shared holds from
/// different vCPUs do not bounce a cache line between CPUs, and a shared
/// hold costs one store-load fence instead of two read-modify-writes on a
/// shared word. Writers pay for it: taking the lock exclusively reads every
/// slot, which suits an MMU lock (faults are frequent, zaps rare).
///
/// Built on an ``EpochReclaimer``'s ``EpochReclaimer/readerSlotWords``, the
/// lock lets a reader take it shared *and* enter that reclaimer's read
/// section with one store (``lockSharedEnteringReadSection(slot:)``): the
/// fault path's whole announcement is one store-load fence.
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
/// Sendable safety argument (`@unchecked` only because the class holds
/// `Atomic`s next to a `let` of a Sendable class): every stored property is
/// immutable or atomic.
public final class PerSlotReaderWriterLock: ReaderWriterLock, @unchecked Sendable {
    /// The reader slot words (possibly shared with an ``EpochReclaimer``).
    public let readerSlotWords: ReaderSlotWords
    /// 0 when no writer holds or waits for the lock, 1 otherwise.
    @usableFromInline let writer = Atomic<UInt64>(0)
    /// Shared holders without a slot.
    @usableFromInline let unslottedReaders = Atomic<UInt64>(0)

    /// A lock nobody holds, with `slotCount` reader slots of its own.
    ///
    /// - Throws: `SLATError/unsupportedReaderSlotCount(_:)` for a count
    ///   outside `1...ReaderSlotWords.maximumSlotCount`.
    public convenience init(slotCount: Int) throws(SLATError) {
        self.init(readerSlotWords: try ReaderSlotWords(slotCount: slotCount))
    }

    /// A lock nobody holds whose readers announce themselves in
    /// `readerSlotWords`, typically an ``EpochReclaimer``'s. No other lock
    /// may use the same words.
    public init(readerSlotWords: ReaderSlotWords) {
        self.readerSlotWords = readerSlotWords
    }

    /// Reader slots; slot indices are `0..<slotCount`.
    public var slotCount: Int { readerSlotWords.slotCount }

    // MARK: Readers with a slot

    /// Blocks until the calling thread, using reader slot `slot`, holds the
    /// lock shared; waits while a writer holds it or is waiting for it.
    /// Writes only `slot`'s word. The slot must not hold the lock already.
    @inlinable @inline(__always)
    public func lockShared(slot: Int) {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.reached(.lockAcquire)
        #endif
        if !tryLockShared(slot: slot) { waitForShared(slot: slot, enteringReadSection: false) }
    }

    /// Takes the lock shared for reader slot `slot` unless a writer holds it
    /// or waits for it; returns whether it did.
    @inlinable @inline(__always)
    public func tryLockShared(slot: Int) -> Bool {
        let word = readerSlotWords.word(slot: slot)
        let own = word.pointee.load(ordering: .relaxed)
        // The lock's contract: a slot belongs to one thread, which does not
        // take the lock again while holding it (SLAT's MMUs check the slot at
        // entry and take it once per call); a second take would corrupt the
        // slot word the reclaimer reads.
        precondition(own & ReaderSlotWords.holdsShared == 0, "slot already holds the lock shared")
        // Announce, then look for a writer; the writer does the converse.
        word.pointee.store(own | ReaderSlotWords.holdsShared, ordering: .sequentiallyConsistent)
        if writer.load(ordering: .sequentiallyConsistent) == 0 { return true }
        word.pointee.store(own, ordering: .releasing)
        return false
    }

    /// Releases the shared hold of reader slot `slot`.
    @inlinable @inline(__always)
    public func unlockShared(slot: Int) {
        let word = readerSlotWords.word(slot: slot)
        let own = word.pointee.load(ordering: .relaxed)
        word.pointee.store(own & ~ReaderSlotWords.holdsShared, ordering: .releasing)
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.reached(.lockRelease)
        #endif
    }

    /// Takes the lock shared through `slot` and enters the read section of
    /// the ``EpochReclaimer`` built on the same ``readerSlotWords``, with
    /// one store of the slot word (waits while a writer holds the lock or
    /// waits for it). Equivalent to ``lockShared(slot:)`` followed by
    /// ``EpochReclaimer/enterReadSection(slot:)``. The slot must be idle
    /// (no hold, no read section). End both with
    /// ``unlockSharedLeavingReadSection(slot:)``.
    @inlinable @inline(__always)
    public func lockSharedEnteringReadSection(slot: Int) {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.reached(.lockAcquire)
        #endif
        if !tryLockSharedEnteringReadSection(slot: slot) { waitForShared(slot: slot, enteringReadSection: true) }
    }

    /// ``lockSharedEnteringReadSection(slot:)`` without waiting: returns
    /// false, with the slot idle again, when a writer holds or waits.
    @inlinable @inline(__always)
    public func tryLockSharedEnteringReadSection(slot: Int) -> Bool {
        let word = readerSlotWords.word(slot: slot)
        // As in tryLockShared(slot:): one take per slot at a time.
        precondition(word.pointee.load(ordering: .relaxed) == 0, "slot already holds the lock or is in a read section")
        let epochWord = readerSlotWords.epoch
        while true {
            let epoch = epochWord.pointee.load(ordering: .sequentiallyConsistent)
            word.pointee.store(epoch << ReaderSlotWords.epochShift | ReaderSlotWords.holdsShared
                               | ReaderSlotWords.inReadSection, ordering: .sequentiallyConsistent)
            if writer.load(ordering: .sequentiallyConsistent) != 0 {
                word.pointee.store(0, ordering: .releasing)
                return false
            }
            // As the reclaimer's own entry: the announced epoch must not be
            // older than one that advanced between the load and the store.
            if epochWord.pointee.load(ordering: .sequentiallyConsistent) == epoch { return true }
        }
    }

    /// Releases the shared hold of `slot` and leaves its read section, with
    /// one store.
    @inlinable @inline(__always)
    public func unlockSharedLeavingReadSection(slot: Int) {
        readerSlotWords.word(slot: slot).pointee.store(0, ordering: .releasing)
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.reached(.lockRelease)
        #endif
    }

    /// The contended part of the slot entries, kept out of line so the
    /// uncontended path inlines into the caller.
    @usableFromInline @inline(never)
    func waitForShared(slot: Int, enteringReadSection: Bool) {
        var backoff = SpinBackoff()
        while true {
            if writer.load(ordering: .relaxed) == 0 {
                if enteringReadSection ? tryLockSharedEnteringReadSection(slot: slot) : tryLockShared(slot: slot) {
                    return
                }
            }
            backoff.wait()
        }
    }

    // MARK: ReaderWriterLock (readers without a slot, writers)

    /// Blocks until the calling thread holds the lock shared without a slot
    /// (counted in a shared word); waits while a writer holds or waits.
    @inlinable
    public func lockShared() {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.reached(.lockAcquire)
        #endif
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
        unslottedReaders.wrappingAdd(1, ordering: .sequentiallyConsistent)
        if writer.load(ordering: .sequentiallyConsistent) == 0 { return true }
        unslottedReaders.wrappingSubtract(1, ordering: .releasing)
        return false
    }

    /// Releases one slot-less shared hold.
    @inlinable
    public func unlockShared() {
        let old = unslottedReaders.wrappingSubtract(1, ordering: .releasing).oldValue
        // The lock's own contract (ReaderWriterLock: release only what the
        // calling thread took). SLAT pairs every take with its release
        // (withShared/withExclusive or a defer), and an unbalanced release
        // by a caller's code has no error to return — going on would let a
        // writer in beside readers and corrupt the tables, so it stops here.
        precondition(old != 0, "unlockShared without a shared hold")
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.reached(.lockRelease)
        #endif
    }

    /// Blocks until the calling thread holds the lock exclusively. Once it
    /// has claimed the writer word, new readers stay out while it waits for
    /// the current ones to leave. Reads every slot word.
    @inlinable
    public func lockExclusive() {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.reached(.lockAcquire)
        #endif
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
        // The lock's own contract (ReaderWriterLock: release only what the
        // calling thread took). SLAT pairs every take with its release
        // (withShared/withExclusive or a defer), and an unbalanced release
        // by a caller's code has no error to return — going on would let a
        // writer in beside readers and corrupt the tables, so it stops here.
        precondition(old == 1, "unlockExclusive without the exclusive hold")
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.reached(.lockRelease)
        #endif
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
        if unslottedReaders.load(ordering: .sequentiallyConsistent) != 0 { return true }
        for slot in 0..<readerSlotWords.slotCount
        where readerSlotWords.word(slot: slot).pointee.load(ordering: .sequentiallyConsistent)
            & ReaderSlotWords.holdsShared != 0 {
            return true
        }
        return false
    }
}
