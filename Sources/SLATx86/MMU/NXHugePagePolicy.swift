import SLATCore
import Synchronization

// NX huge pages: the recovery pass. (The fault side is in FaultPlan: an
// instruction fetch maps 4 KiB and marks the tables that stand where the
// huge leaf would have been.)
extension ExtendedPageTableMMU {
    /// NX-huge-page splits recorded and not yet recovered.
    public var pendingNXSplits: [NXHugePageSplit] { listLock.withLock { nxSplits } }

    /// Zaps up to `maximumCount` recorded NX-huge-page splits (oldest first):
    /// each marked table entry is cleared and its subtree retired, so the
    /// next fault there may install the huge leaf again (and an instruction
    /// fetch will split it again). A recorded split whose table is gone or
    /// no longer marked is just dropped; one in a memslot that logs dirty
    /// pages is kept for later (as KVM, recovery would only bring back a
    /// huge leaf that logging must split again).
    ///
    /// Locking contract: takes the MMU lock exclusively.
    /// TLB contract: one flush for all zapped splits, before the lock is
    /// released. Each zap is accounted (`accountChange(old:new:address:level:mode:batch:)`):
    /// the dirty bits of the leaves below go to their dirty-bit-mode log.
    /// Returns the number of tables zapped.
    /// - Throws: `SLATError/tornDown`.
    @discardableResult
    public func recoverNXHugePages(maximumCount: Int = .max) throws(SLATError) -> Int {
        try checkNotTornDown()
        let batchOfSplits: [NXHugePageSplit] = listLock.withLock {
            let count = min(max(maximumCount, 0), nxSplits.count)
            let taken = Array(nxSplits.prefix(count))
            nxSplits.removeFirst(count)
            return taken
        }
        guard !batchOfSplits.isEmpty else { return 0 }
        lock.lockExclusive()
        defer { lock.unlockExclusive() }
        guard !isTornDown else { throw .tornDown }
        var batch = TLBFlushBatch()
        var zapped = 0
        var kept: [NXHugePageSplit] = []
        for split in batchOfSplits {
            let size = format.entrySize(atLevel: split.level)
            let frames = GuestFrameRange(covering: GuestPhysicalRange(start: split.address, size: size))
            if !Self.nxRecoveryDropsDirtyBits,
               guestMemory.allMemslots.contains(where: { $0.flags.contains(.dirtyLogging) && $0.frames.overlaps(frames) }) {
                kept.append(split)
                continue
            }
            guard let pointer = entryPointer(for: split.address, level: split.level, addressSpace: split.addressSpace)
            else { continue }
            let entry = pointer.pointee.load(ordering: .acquiring)
            guard format.isPresent(entry, atLevel: split.level), format.isTable(entry, atLevel: split.level),
                  entry & ExtendedPageTableBits.nxHugePageSplit != 0 else { continue }
            let (exchanged, _) = pointer.pointee.compareExchange(expected: entry, desired: 0, ordering: .acquiringAndReleasing)
            guard exchanged else { continue }
            accountChange(old: entry, new: 0, address: split.address, level: split.level, mode: .exclusive, batch: &batch)
            zapped += 1
        }
        if !kept.isEmpty { listLock.withLock { nxSplits.append(contentsOf: kept) } }
        settle(batch)
        return zapped
    }

    /// The entry at `level` on the walk to `address`, or `nil` when a level
    /// above it is not a table.
    func entryPointer(for address: GuestPhysicalAddress, level target: Int, addressSpace: Int) -> EntryPointer? {
        var level = format.rootLevel
        var pointer = memory.entries(at: rootAddress(addressSpace)) + format.index(of: address, atLevel: level)
        while level > target {
            let entry = pointer.pointee.load(ordering: .acquiring)
            guard format.isPresent(entry, atLevel: level), format.isTable(entry, atLevel: level) else { return nil }
            level -= 1
            pointer = memory.entries(at: format.childTable(of: entry)) + format.index(of: address, atLevel: level)
        }
        return pointer
    }
}
