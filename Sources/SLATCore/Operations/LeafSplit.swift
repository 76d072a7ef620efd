import Synchronization

/// The outcome of ``PageTable/splitLeaf(_:expected:level:mode:context:tableEntryBits:)``.
@frozen
public enum LeafSplitOutcome: Sendable, Equatable {
    /// The leaf was replaced by a table of equivalent leaves one level down,
    /// whose page is `child`. No translation changed, so no TLB flush is owed.
    case split(child: HostPhysicalAddress)
    /// Another thread changed the entry first; `expected` now holds its value
    /// and nothing was changed (the filled page went back to the cache).
    case lostRace
    /// The context's page cache is empty: top it up outside the lock and retry.
    case cacheEmpty
}

// Entry-level building blocks for backends (fault paths, eager splitting,
// huge-page recovery) that walk the tables themselves instead of through a
// range operation. Format-agnostic; every one is `@inlinable`.
extension PageTable {
    /// Replaces the present leaf `expected` at `level` (> 0) by a table page
    /// from `context`'s cache filled *completely* with the equivalent leaves
    /// one level down (same output addresses, permissions, memory type,
    /// accessed/dirty and software bits), linked by one compare-and-exchange
    /// (in both modes, since the leaf may be volatile): other threads and the hardware see either the leaf or the table, never
    /// a hole.
    ///
    /// TLB contract: nothing is owed; the translations are the same. Formats
    /// that require break-before-make must not use it on live tables.
    /// Locking contract: the MMU lock held in `mode`; in shared mode inside a
    /// reclaimer read section. `tableEntryBits` are or-ed into the new table
    /// entry (a backend's software marker; no format bits here). On ``LeafSplitOutcome/lostRace`` `expected`
    /// holds the current value and the page is back in the cache (cleared).
    @inlinable
    public func splitLeaf(
        _ pointer: EntryPointer, expected: inout UInt64, level: Int, mode: WalkMode, context: PageTableContext,
        tableEntryBits: UInt64 = 0
    ) -> LeafSplitOutcome {
        // The caller passes the leaf its walk just loaded at `pointer` (SLAT's
        // backends do); anything else is a walk at the wrong level, and
        // splitting it would turn a table's address into leaves.
        precondition(level > 0 && format.isLeaf(expected, atLevel: level), "splitLeaf needs a present leaf above level 0")
        guard let page = makeSplitTable(of: expected, level: level, context: context) else { return .cacheEmpty }
        let entry = format.tableEntry(child: page) | tableEntryBits
        // A leaf may be volatile (hardware A/D, lockless fast faults): always
        // exchange, so a bit set behind the lock is never overwritten.
        let (exchanged, original) = pointer.pointee.compareExchange(
            expected: expected, desired: entry, ordering: .acquiringAndReleasing)
        if exchanged {
            return .split(child: page)
        }
        expected = original
        recycle(page, context: context)
        return .lostRace
    }

    /// Links an empty table page from `context`'s cache in place of the
    /// non-present entry `expected` at `level` by compare-and-exchange
    /// (shared) or store (exclusive). Returns the page, or `nil` when the
    /// cache is empty or the exchange lost (then `expected` holds the
    /// current value and the page is back in the cache).
    ///
    /// `softwareBits` lets a backend add software bits to the table entry
    /// (for instance a marker for a split made for a policy).
    @inlinable
    public func linkEmptyTable(
        _ pointer: EntryPointer, expected: inout UInt64, level: Int, mode: WalkMode, context: PageTableContext,
        softwareBits: UInt64 = 0
    ) -> HostPhysicalAddress? {
        guard let page = context.pageCache.take() else { return nil }
        let entry = format.tableEntry(child: page) | softwareBits
        if mode == .shared {
            let (exchanged, original) = pointer.pointee.compareExchange(
                expected: expected, desired: entry, ordering: .acquiringAndReleasing)
            if exchanged { return page }
            expected = original
            context.pageCache.giveBack(page)
            return nil
        }
        pointer.pointee.store(entry, ordering: .releasing)
        return page
    }

    /// Hands every table page below the table entry `tableEntry` (at
    /// `level`), which the caller has just replaced and therefore owns (rule
    /// 2), to `batch` to be freed after the flush. In shared mode every child
    /// entry is frozen first so that a writer still inside the subtree fails
    /// its exchange.
    ///
    /// TLB contract: the caller must also owe an invalidation covering the
    /// entry's range; this only collects the pages.
    @inlinable
    public func detachSubtree(ofTableEntry tableEntry: UInt64, level: Int, mode: WalkMode, into batch: inout TLBFlushBatch) {
        detachSubtree(of: tableEntry, level: level, shared: mode == .shared, into: &batch.requests)
    }

    /// Clears a table page that was taken from `context`'s cache and filled
    /// but never linked, and returns it to the cache.
    @inlinable
    public func recycleUnlinkedTable(_ page: HostPhysicalAddress, context: PageTableContext) {
        recycle(page, context: context)
    }
}
