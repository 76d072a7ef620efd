import SLATCore
import Synchronization

// One block split for the eager split engine (SLATSplit), which walks the
// tables itself and needs a per-entry primitive rather than a range walk.
extension StageTwoPageTable {
    /// Replaces the live block `expected` at `level` (the entry `pointer`
    /// mapping `address`) by a subtree built completely from `context`'s
    /// page cache with the same translations at `leafLevel` (output,
    /// permissions, memory attributes, access flag, software bits), linked
    /// by break-before-make: one compare-and-exchange of the block for the
    /// locked invalid marker (the exchange that decides the race), the
    /// block's invalidation by address at its level, then the table entry
    /// stored. Walkers meeting the marker retry; a vCPU that misses in its
    /// TLB meanwhile takes a fault that retries without changing anything.
    ///
    /// - Returns: `SLATCore/LeafSplitOutcome/split(child:)` with the
    ///   subtree's top table; `SLATCore/LeafSplitOutcome/lostRace` when
    ///   the entry was no longer `expected` (now updated; the subtree's
    ///   pages are zeroed and back in the cache);
    ///   `SLATCore/LeafSplitOutcome/cacheEmpty` when the cache holds fewer
    ///   than ``tablePagesForSubtree(level:leafLevel:)`` pages (nothing
    ///   changed).
    ///
    /// Locking contract: the MMU lock held shared or exclusive; in shared
    /// mode inside a reclaimer read section.
    /// TLB contract: the break is invalidated before the table is written;
    /// nothing is owed afterwards (the translations are the same).
    /// Precondition: `expected` is a present block at `level` > `leafLevel`,
    /// and `leafLevel` holds leaves in this granule.
    @inlinable
    public func splitBlock(
        _ pointer: EntryPointer, expected: inout UInt64, level: Int, address: GuestPhysicalAddress,
        leafLevel: Int, context: PageTableContext
    ) -> LeafSplitOutcome {
        let format = self.format
        // As LeafSplit's splitLeaf: the caller passes the block its walk
        // just loaded (SLAT's paths do), and a leaf level of the granule.
        precondition(level > leafLevel && format.isLeaf(expected, atLevel: level) && format.canHoldLeaf(atLevel: leafLevel),
                     "splitBlock needs a block above a leaf level")
        guard context.pageCache.count >= tablePagesForSubtree(level: level, leafLevel: leafLevel) else {
            return .cacheEmpty
        }
        var first = expected
        var height = level
        while height > leafLevel {
            first = format.splitLeaf(first, fromLevel: height)
            height -= 1
        }
        let subtree = buildSubtree(firstLeaf: first, level: level, leafLevel: leafLevel, context: context)
        let (exchanged, original) = pointer.pointee.compareExchange(
            expected: expected, desired: format.frozenEntry, ordering: .acquiringAndReleasing)
        guard exchanged else {
            recycleSubtree(subtree, level: level, context: context)
            expected = original
            return .lostRace
        }
        tlb.invalidate(address: address.alignedDown(to: format.entrySize(atLevel: level)), level: format.leafLevel(ofHeight: level))
        pointer.pointee.store(format.tableEntry(child: subtree), ordering: .releasing)
        return .split(child: subtree)
    }
}
