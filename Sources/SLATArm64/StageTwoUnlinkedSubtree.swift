import SLATCore
import Synchronization

/// Unlinked subtrees: tables built where no walker can see them, then linked
/// with one exchange (KVM's `kvm_pgtable_stage2_create_unlinked` /
/// `kvm_pgtable_stage2_free_unlinked`). The eager split engine builds the
/// replacement of a block with them, from pages its cache was topped up
/// with outside the MMU lock.
extension StageTwoPageTable {
    /// Table pages a fully populated subtree replacing one entry at `level`,
    /// with leaves at `leafLevel`, takes: one table per level in between,
    /// each level `entriesPerTable` times the one above.
    @inlinable
    public func tablePagesForSubtree(level: Int, leafLevel: Int) -> Int {
        var total = 0
        var count = 1
        var height = level
        while height > leafLevel {
            total += count
            count &*= format.entriesPerTable
            height -= 1
        }
        return total
    }

    /// Builds, from `context`'s page cache only, a fully populated subtree
    /// that maps the `level`-sized block at `output` with leaves at
    /// `leafLevel` and `attributes`, and returns its top table. Nothing
    /// links it: the caller links it with one exchange (or frees it with
    /// ``freeUnlinkedSubtree(_:level:mode:)``). Takes no lock; allocates
    /// nothing (the cache is topped up beforehand, outside the MMU lock).
    ///
    /// - Throws: `SLATError/unsupportedLevel(_:)` unless `leafLevel`
    ///   holds leaves and is below `level` (at most the root level);
    ///   `SLATError/misalignedOutputAddress(_:alignment:)` for an output
    ///   not aligned to the block; `SLATError/outputAddressTooWide(_:outputBits:)`;
    ///   attribute errors; `SLATError/outOfTableMemory(needed:available:)`
    ///   when the cache holds fewer than ``tablePagesForSubtree(level:leafLevel:)``
    ///   pages — all before taking any page.
    @inlinable
    public func createUnlinkedSubtree(
        output: HostPhysicalAddress, attributes: LeafAttributes, level: Int, leafLevel: Int = 0,
        context: PageTableContext
    ) throws(SLATError) -> HostPhysicalAddress {
        try checkLive()
        guard level >= 1, level <= format.rootLevel else { throw .unsupportedLevel(level) }
        guard leafLevel >= 0, leafLevel < level, format.canHoldLeaf(atLevel: leafLevel) else {
            throw .unsupportedLevel(leafLevel)
        }
        let size = format.entrySize(atLevel: level)
        guard output.isAligned(to: size) else { throw .misalignedOutputAddress(output, alignment: size) }
        try table.validateOutput(output, size: size)
        try validateLeafAttributes(attributes)
        let needed = tablePagesForSubtree(level: level, leafLevel: leafLevel)
        guard context.pageCache.count >= needed else {
            throw .outOfTableMemory(needed: needed, available: context.pageCache.count)
        }
        let first = format.leafEntry(output: output, attributes: attributes, atLevel: leafLevel)
        return buildSubtree(firstLeaf: first, level: level, leafLevel: leafLevel, context: context)
    }

    /// Frees the unlinked subtree whose top table is `top` (replacing an
    /// entry at `level`): at once in exclusive mode, after a grace period
    /// in shared mode. The caller guarantees that no table links it and no
    /// TLB holds a translation through it (never linked, or unlinked and
    /// invalidated). Returns the pages freed or retired.
    @inlinable @discardableResult
    public func freeUnlinkedSubtree(_ top: HostPhysicalAddress, level: Int, mode: WalkMode) -> Int {
        var pages: [HostPhysicalAddress] = []
        collectSubtree(top, level: level, into: &pages)
        table.reclaimer.noteTableUnlinked()
        switch mode {
        case .exclusive: for page in pages { table.memory.freePage(page) }
        case .shared: table.reclaimer.retire(pages)
        }
        return pages.count
    }

    /// Fills a subtree from the cache (which holds enough pages): entries
    /// at `level - 1` are leaves when that is `leafLevel`, else subtrees.
    /// Plain stores: nobody can see the pages yet.
    @inlinable
    func buildSubtree(firstLeaf: UInt64, level: Int, leafLevel: Int, context: PageTableContext) -> HostPhysicalAddress {
        guard let page = context.pageCache.take() else {
            preconditionFailure("page cache checked before building a subtree")
        }
        let entries = table.memory.entries(at: page)
        let childLevel = level - 1
        let step = format.entrySize(atLevel: childLevel)
        let count = format.entriesPerTable
        let format = self.format
        if childLevel == leafLevel {
            var leaf = firstLeaf
            for index in 0..<count {
                entries[index].store(leaf, ordering: .relaxed)
                leaf = format.leafEntry(leaf, advancedBy: step)
            }
        } else {
            for index in 0..<count {
                let leaf = format.leafEntry(firstLeaf, advancedBy: step &* UInt64(index))
                let child = buildSubtree(firstLeaf: leaf, level: childLevel, leafLevel: leafLevel, context: context)
                entries[index].store(format.tableEntry(child: child), ordering: .relaxed)
            }
        }
        table.memory.setLiveEntryCount(of: page, to: count)
        return page
    }

    /// Every table page of the subtree under `top`, `top` included.
    @inlinable
    func collectSubtree(_ top: HostPhysicalAddress, level: Int, into pages: inout [HostPhysicalAddress]) {
        pages.append(top)
        let childLevel = level - 1
        guard childLevel > 0 else { return }
        let entries = table.memory.entries(at: top)
        for index in 0..<format.entriesPerTable {
            let entry = entries[index].load(ordering: .acquiring)
            if format.isPresent(entry, atLevel: childLevel) && format.isTable(entry, atLevel: childLevel) {
                collectSubtree(format.childTable(of: entry), level: childLevel, into: &pages)
            }
        }
    }

    /// Zeroes the pages of a subtree that lost its race to be linked and
    /// puts them back in the cache.
    @inlinable
    func recycleSubtree(_ top: HostPhysicalAddress, level: Int, context: PageTableContext) {
        var pages: [HostPhysicalAddress] = []
        collectSubtree(top, level: level, into: &pages)
        for page in pages {
            let entries = table.memory.entries(at: page)
            for index in 0..<format.entriesPerTable { entries[index].store(0, ordering: .relaxed) }
            table.memory.setLiveEntryCount(of: page, to: 0)
            context.pageCache.giveBack(page)
        }
    }
}
