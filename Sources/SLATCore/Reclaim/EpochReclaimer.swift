import Synchronization

/// Grace-period (epoch) reclamation of table pages unlinked while shared
/// walkers may still be reading them (rule 2 of Docs/concurrency.md; KVM uses RCU).
///
/// A thread that walks tables under the shared MMU lock brackets the walk
/// with ``enterReadSection(slot:)`` / ``leaveReadSection(slot:)`` using its
/// own slot (a per-vCPU index, see ``PageTableContext``). A page the thread
/// unlinked is handed to ``retire(_:)`` *after* the TLB flush that rule 3
/// requires; it is freed once every reader that could have seen it has
/// left its read section: two epoch advances after its retirement.
///
/// Epoch rule: a reader announces the global epoch it entered in; the epoch
/// advances only when every active reader has announced the current one. A
/// page retired at epoch `e` cannot be reachable to a reader that announced
/// `e + 1` (it loaded the global epoch after the page was unlinked), so at
/// epoch `e + 2` no reader can hold it.
// @unchecked Sendable: the slot words are a Sendable object of Atomics;
// the retired list is only touched while `listLock` is held.
public final class EpochReclaimer<Memory: TableMemory>: @unchecked Sendable {
    /// The memory pages are freed to.
    public let memory: Memory
    /// Reader slots; slot indices are `0..<slotCount`.
    public let slotCount: Int

    /// The slot words and global epoch (see ``ReaderSlotWords``); a
    /// ``PerSlotReaderWriterLock`` built on the same words lets a reader
    /// take the lock and enter a read section with one store.
    public let readerSlotWords: ReaderSlotWords
    /// Bumped (sequentially consistent) each time a table page of the
    /// tables this reclaimer serves is unlinked, before the page can be
    /// retired or freed (``noteTableUnlinked()``). A walker that remembers a
    /// table page between walks (the stage-2 fault's per-vCPU leaf-table
    /// memo) reads it inside its read section and trusts the memo only while
    /// it has not moved: an unlink finished under the exclusive lock, or
    /// retired before the read section began, is seen; one racing the read
    /// section cannot free the page under it (Docs/concurrency.md).
    public let tableUnlinks = Atomic<UInt64>(0)
    private let listLock = Atomic<Bool>(false)
    private var retired: [(page: HostPhysicalAddress, epoch: UInt64)] = []
    private let retiredTotal = Atomic<Int>(0)
    private let freedTotal = Atomic<Int>(0)

    /// A reclaimer freeing into `memory`, with `slotCount` reader slots (one
    /// per vCPU or thread that walks shared).
    ///
    /// - Throws: `SLATError/unsupportedReaderSlotCount(_:)` for a count
    ///   outside `1...ReaderSlotWords.maximumSlotCount`.
    public convenience init(memory: Memory, slotCount: Int) throws(SLATError) {
        self.init(memory: memory, readerSlotWords: try ReaderSlotWords(slotCount: slotCount))
    }

    /// A reclaimer freeing into `memory` whose readers announce themselves
    /// in `readerSlotWords` (shared with a ``PerSlotReaderWriterLock``).
    /// No other reclaimer may use the same words.
    public init(memory: Memory, readerSlotWords: ReaderSlotWords) {
        self.memory = memory
        self.slotCount = readerSlotWords.slotCount
        self.readerSlotWords = readerSlotWords
    }

    deinit {
        // Pages still retired are freed: no reader can exist once the reclaimer is gone.
        for item in retired { memory.freePage(item.page) }
    }

    @inlinable var globalEpoch: UnsafeMutablePointer<Atomic<UInt64>> { readerSlotWords.epoch }

    /// Starts a read-side section for `slot`: until the matching leave, no
    /// page this thread can reach from the tables is freed. Keeps the
    /// slot's shared hold of a lock sharing the words, if any.
    // Always inlined: it is on every lockless fast page fault, where the
    // call and its reloads cost ~13 of the path's ~190 instructions.
    @inlinable @inline(__always)
    public func enterReadSection(slot: Int) {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.reached(.readSectionEnter)
        #endif
        let word = readerSlotWords.word(slot: slot)
        // Taken once: the sequentially consistent store below would make
        // the compiler load the words' fields again on every use.
        let global = globalEpoch
        let held = word.pointee.load(ordering: .relaxed) & ReaderSlotWords.holdsShared
        while true {
            let epoch = global.pointee.load(ordering: .sequentiallyConsistent)
            word.pointee.store(epoch << ReaderSlotWords.epochShift | held | ReaderSlotWords.inReadSection,
                               ordering: .sequentiallyConsistent)
            // Re-check so the announced epoch is not older than one that
            // advanced between the load and the store.
            if global.pointee.load(ordering: .sequentiallyConsistent) == epoch { return }
        }
    }

    /// Ends the read-side section of `slot` (keeping a shared lock hold).
    @inlinable
    public func leaveReadSection(slot: Int) {
        let word = readerSlotWords.word(slot: slot)
        let held = word.pointee.load(ordering: .relaxed) & ReaderSlotWords.holdsShared
        word.pointee.store(held, ordering: .releasing)
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.reached(.readSectionLeave)
        #endif
    }

    /// Hands unlinked, already-flushed pages over to be freed after a grace
    /// period, and frees whatever earlier retirements have become safe.
    public func retire(_ pages: [HostPhysicalAddress]) {
        if pages.isEmpty { return }
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        if ExplorationHooks.isActive(.retiredTablesFreedWithoutGracePeriod) {
            for page in pages { memory.freePage(page) }
            retiredTotal.wrappingAdd(pages.count, ordering: .relaxed)
            freedTotal.wrappingAdd(pages.count, ordering: .relaxed)
            return
        }
        #endif
        let epoch = globalEpoch.pointee.load(ordering: .sequentiallyConsistent)
        withListLock { () -> Void in
            for page in pages { retired.append((page, epoch)) }
        }
        retiredTotal.wrappingAdd(pages.count, ordering: .relaxed)
        reclaim()
    }

    /// Records that a table page is being unlinked; call it before the page
    /// is handed to ``retire(_:)`` or freed.
    @inlinable
    public func noteTableUnlinked() {
        tableUnlinks.wrappingAdd(1, ordering: .sequentiallyConsistent)
    }

    /// Advances the epoch if every active reader has caught up, then frees
    /// pages whose grace period has passed. Returns how many it freed.
    @discardableResult
    public func reclaim() -> Int {
        tryAdvance()
        let epoch = globalEpoch.pointee.load(ordering: .sequentiallyConsistent)
        let ready: [HostPhysicalAddress] = withListLock {
            var ready: [HostPhysicalAddress] = []
            var kept: [(page: HostPhysicalAddress, epoch: UInt64)] = []
            for item in retired {
                if item.epoch + 2 <= epoch { ready.append(item.page) } else { kept.append(item) }
            }
            retired = kept
            return ready
        }
        for page in ready { memory.freePage(page) }
        freedTotal.wrappingAdd(ready.count, ordering: .relaxed)
        return ready.count
    }

    /// Waits until every retired page has been freed. The caller must not be
    /// inside a read section; other readers must eventually leave theirs.
    public func synchronize() {
        while pendingCount > 0 {
            reclaim()
            #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
            // A reader still inside its section must run to leave it.
            if pendingCount > 0 { _ = ExplorationHooks.spin() }
            #endif
        }
    }

    /// Pages retired and not yet freed.
    public var pendingCount: Int { retiredTotal.load(ordering: .relaxed) - freedTotal.load(ordering: .relaxed) }
    /// Pages retired since creation.
    public var retiredCount: Int { retiredTotal.load(ordering: .relaxed) }
    /// Pages freed since creation.
    public var freedCount: Int { freedTotal.load(ordering: .relaxed) }
    /// The current global epoch (observability for tests).
    public var epoch: UInt64 { globalEpoch.pointee.load(ordering: .sequentiallyConsistent) }

    private func tryAdvance() {
        let epoch = globalEpoch.pointee.load(ordering: .sequentiallyConsistent)
        for i in 0..<slotCount {
            let value = readerSlotWords.word(slot: i).pointee.load(ordering: .sequentiallyConsistent)
            if value & ReaderSlotWords.inReadSection != 0 && value >> ReaderSlotWords.epochShift != epoch { return }
        }
        _ = globalEpoch.pointee.compareExchange(expected: epoch, desired: epoch + 1, ordering: .sequentiallyConsistent)
    }

    private func withListLock<R>(_ body: () -> R) -> R {
        while listLock.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged == false {}
        defer { listLock.store(false, ordering: .releasing) }
        return body()
    }
}
