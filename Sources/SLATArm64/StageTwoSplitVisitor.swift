import SLATCore
import Synchronization

/// The walk visitor of ``StageTwoPageTable/splitBlocks(in:leafLevel:mode:context:)``:
/// every block above the leaf level is replaced by a fully populated
/// unlinked subtree with the same translations, linked by break-before-make:
/// one compare-and-exchange of the block for the locked marker, the block's
/// invalidation by address at its level, then the table entry stored.
@usableFromInline
struct StageTwoSplitVisitor<Memory: TableMemory, T: TLB, Caches: CacheMaintenance>: PageTableVisitor {
    @usableFromInline let owner: StageTwoPageTable<Memory, T, Caches>
    @usableFromInline let context: PageTableContext
    @usableFromInline let leafLevel: Int
    @usableFromInline var blocksSplit = 0
    /// Set when the walk stopped: where to go on.
    @usableFromInline var stoppedAt: GuestPhysicalAddress?
    /// Set with `stoppedAt` when the cache ran short.
    @usableFromInline var pagesWanted = 0

    @inlinable
    init(owner: StageTwoPageTable<Memory, T, Caches>, context: PageTableContext, leafLevel: Int) {
        self.owner = owner
        self.context = context
        self.leafLevel = leafLevel
    }

    @inlinable var visits: WalkVisits { .leaf }

    @inlinable
    mutating func visit(_ entry: inout VisitedEntry, kind: VisitKind) throws(SLATError) -> VisitOutcome {
        let format = owner.format
        let level = entry.level
        var old = entry.snapshot
        while true {
            if old == format.frozenEntry {
                // Another thread's break-before-make or merge: restart here
                // once it is done.
                stoppedAt = entry.address
                return .stop
            }
            guard format.isPresent(old, atLevel: level) else { return .skipChildren }
            if format.isTable(old, atLevel: level) { return .proceed }
            guard level > leafLevel else { return .skipChildren }
            let needed = owner.tablePagesForSubtree(level: level, leafLevel: leafLevel)
            guard context.pageCache.count >= needed else {
                stoppedAt = entry.address
                pagesWanted = needed
                return .stop
            }
            var first = old
            var height = level
            while height > leafLevel {
                first = format.splitLeaf(first, fromLevel: height)
                height -= 1
            }
            let subtree = owner.buildSubtree(firstLeaf: first, level: level, leafLevel: leafLevel, context: context)
            let (exchanged, original) = entry.pointer.pointee.compareExchange(
                expected: old, desired: format.frozenEntry, ordering: .acquiringAndReleasing)
            if exchanged {
                owner.tlb.invalidate(address: entry.address, level: format.leafLevel(ofHeight: level))
                entry.pointer.pointee.store(format.tableEntry(child: subtree), ordering: .releasing)
                blocksSplit += 1
                return .skipChildren
            }
            // Lost a race (another writer, or hardware setting the access
            // flag): the subtree copied a stale value. Rebuild from the new one.
            owner.recycleSubtree(subtree, level: level, context: context)
            old = original
        }
    }
}

extension StageTwoPageTable {
    /// Splits every block overlapping `range` into leaves at `leafLevel`
    /// (the smallest pages by default): each block is replaced by a fully
    /// populated subtree built from `context`'s cache and linked with one
    /// compare-and-exchange, break-before-make (the block is invalidated by
    /// address at its level before the table is stored). The translations
    /// do not change; the tables are ready for page-granular dirty logging.
    ///
    /// Allocates nothing: when the cache holds fewer pages than the next
    /// block needs, it stops and reports where to resume and how many pages
    /// to have (the caller drops the MMU lock, tops the cache up and calls
    /// again). A locked entry met in a shared walk is waited out by
    /// restarting the walk from it.
    ///
    /// - Throws: range and reader-slot errors; `SLATError/unsupportedLevel(_:)`
    ///   for a `leafLevel` that holds no leaves — before any change.
    @inlinable
    public func splitBlocks(
        in range: GuestPhysicalRange, leafLevel: Int = 0, mode: WalkMode, context: PageTableContext
    ) throws(SLATError) -> StageTwoSplitProgress {
        try checkLive()
        try table.validate(range)
        try validateReaderSlot(of: context)
        guard leafLevel >= 0, leafLevel <= format.rootLevel, format.canHoldLeaf(atLevel: leafLevel) else {
            throw .unsupportedLevel(leafLevel)
        }
        var visitor = StageTwoSplitVisitor(owner: self, context: context, leafLevel: leafLevel)
        let slot = context.readerSlot
        if mode == .shared { table.reclaimer.enterReadSection(slot: slot) }
        defer { if mode == .shared { table.reclaimer.leaveReadSection(slot: slot) } }
        var remaining = range
        while try !table.walker.walk(remaining, mode: mode, with: &visitor) {
            guard let stop = visitor.stoppedAt else { break }
            visitor.stoppedAt = nil
            if visitor.pagesWanted > 0 {
                return StageTwoSplitProgress(
                    blocksSplit: visitor.blocksSplit, resumeAddress: max(stop, range.start),
                    pagesWanted: visitor.pagesWanted)
            }
            if mode == .shared {
                // Let the owner of the locked entry finish.
                table.reclaimer.leaveReadSection(slot: slot)
                table.reclaimer.enterReadSection(slot: slot)
            }
            remaining = GuestPhysicalRange(start: max(stop, range.start), uncheckedEnd: range.end)
        }
        return StageTwoSplitProgress(blocksSplit: visitor.blocksSplit, resumeAddress: nil, pagesWanted: 0)
    }
}
