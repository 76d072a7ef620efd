import SLATCore
import Synchronization

// NX huge pages: the recovery pass. (The fault side is in FaultPlan: an
// instruction fetch maps 4 KiB and marks the tables that stand where the
// huge leaf would have been.)
extension ExtendedPageTableMMU {
    /// NX-huge-page splits recorded and not yet recovered.
    public var pendingNXSplits: [NXHugePageSplit] { listLock.withLock { nxSplits } }

    /// Zaps up to `maximumCount` recorded NX-huge-page splits (oldest first):
    /// each marked table entry is cleared and its subtree detached, so the
    /// next fault there may install the huge leaf again (and an instruction
    /// fetch will split it again). A recorded split whose table is gone or
    /// no longer marked is just dropped.
    ///
    /// Locking contract: takes the MMU lock exclusively.
    /// TLB contract: one flush for all zapped splits, before the lock is
    /// released. Returns the number of tables zapped.
    @discardableResult
    public func recoverNXHugePages(maximumCount: Int = .max) -> Int {
        let batchOfSplits: [NXHugePageSplit] = listLock.withLock {
            let count = min(maximumCount, nxSplits.count)
            let taken = Array(nxSplits.prefix(count))
            nxSplits.removeFirst(count)
            return taken
        }
        guard !batchOfSplits.isEmpty else { return 0 }
        lock.lockExclusive()
        defer { lock.unlockExclusive() }
        var batch = TLBFlushBatch()
        var zapped = 0
        for split in batchOfSplits {
            guard let pointer = entryPointer(for: split.address, level: split.level, addressSpace: split.addressSpace)
            else { continue }
            let entry = pointer.pointee.load(ordering: .acquiring)
            guard format.isPresent(entry, atLevel: split.level), format.isTable(entry, atLevel: split.level),
                  entry & ExtendedPageTableBits.nxHugePageSplit != 0 else { continue }
            pointer.pointee.store(0, ordering: .releasing)
            helpers.detachSubtree(ofTableEntry: entry, level: split.level, mode: .exclusive, into: &batch)
            batch.invalidate(range: GuestPhysicalRange(start: split.address, size: format.entrySize(atLevel: split.level)))
            zapped += 1
        }
        settle(batch)
        return zapped
    }

    /// The entry at `level` on the walk to `address`, or `nil` when a level
    /// above it is not a table.
    func entryPointer(for address: GuestPhysicalAddress, level target: Int, addressSpace: Int) -> EntryPointer? {
        var level = format.rootLevel
        var pointer = memory.entries(at: root(addressSpace: addressSpace)) + format.index(of: address, atLevel: level)
        while level > target {
            let entry = pointer.pointee.load(ordering: .acquiring)
            guard format.isPresent(entry, atLevel: level), format.isTable(entry, atLevel: level) else { return nil }
            level -= 1
            pointer = memory.entries(at: format.childTable(of: entry)) + format.index(of: address, atLevel: level)
        }
        return pointer
    }
}
