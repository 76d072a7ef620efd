import SLATCore
import Synchronization

// Huge-page recovery after dirty logging: collapse tables back into huge
// leaves in place.
extension ExtendedPageTableMMU {
    /// Replaces each table of `frames` that stands where a huge leaf could
    /// be — its block lies in one memslot that does not log, the host maps
    /// the block with a page at least that large (`SLATCore/GuestMemory/resolve(frame:write:)`'s
    /// maximum mapping size), no invalidation of it is in flight, and it is
    /// not an NX-huge-page split — by one huge leaf built from a present
    /// leaf below it (same permissions, memory type and software bits,
    /// output the host block's start), largest level first. Tables without
    /// any present leaf stay. The replaced subtrees go to the reclaimer.
    ///
    /// Locking contract: takes the MMU lock exclusively; every
    /// ``MMUConfiguration/yieldInterval`` collapses it flushes, drops and
    /// retakes it, restarting from the root where it stopped.
    /// TLB contract: everything collapsed is flushed before the lock is
    /// dropped and before this returns; each collapse is accounted
    /// (`accountChange(old:new:address:level:mode:batch:)`).
    /// Returns the number of huge leaves installed.
    /// - Throws: `SLATError/guestRangeOutOfBounds(_:limit:)` for frames
    ///   beyond the format's input address size, `SLATError/tornDown`.
    @inlinable @discardableResult
    public func recoverHugePages(in frames: GuestFrameRange) throws(SLATError) -> Int {
        try checkNotTornDown()
        try checkGuestRange(frames)
        let snapshot = guestMemory.invalidations.snapshot()
        lock.lockExclusive()
        defer { lock.unlockExclusive() }
        guard !isTornDown else { throw .tornDown }
        var batch = TLBFlushBatch()
        var recovered = 0
        let top = min(configuration.maximumLeafLevel, 2)
        for space in 0..<configuration.addressSpaceCount where top > 0 {
            let root = rootAddress(space)
            var iterator = PageTableIterator(
                format: format, memory: memory, root: root, range: frames.physicalRange, minimumLevel: 1)
            var changed = 0
            while iterator.isValid {
                if changed >= configuration.yieldInterval && iterator.canYield {
                    yieldExclusiveLock(&batch)
                    // Torn down or every root replaced meanwhile: nothing left to collapse here.
                    if isTornDown || rootAddress(space) != root { break }
                    iterator.restart()
                    changed = 0
                    continue
                }
                let level = iterator.level
                let entry = iterator.snapshot
                if level <= top && format.isPresent(entry, atLevel: level) && format.isTable(entry, atLevel: level)
                    && entry & ExtendedPageTableBits.nxHugePageSplit == 0,
                   let leaf = collapsedLeaf(for: iterator.address, table: entry, level: level, snapshot: snapshot) {
                    let (exchanged, _) = iterator.pointer.pointee.compareExchange(
                        expected: entry, desired: leaf, ordering: .acquiringAndReleasing)
                    if exchanged {
                        accountChange(old: entry, new: leaf, address: iterator.address, level: level,
                                      mode: .exclusive, batch: &batch)
                        iterator.snapshot = leaf
                        recovered += 1
                        changed += 1
                    }
                }
                iterator.advance()
            }
        }
        settle(batch)
        return recovered
    }

    /// The huge leaf that may replace the table `table` at `level` mapping
    /// the block at `address`, or `nil`.
    @inlinable
    func collapsedLeaf(for address: GuestPhysicalAddress, table: UInt64, level: Int, snapshot: InvalidationSequence) -> UInt64? {
        let size = format.entrySize(atLevel: level)
        let frame = address.frame
        guard let page = try? guestMemory.resolve(frame: frame, write: false),
              !page.dirtyLogging,
              page.hostFrame.address.rawValue >> UInt64(truncatingIfNeeded: format.outputAddressBits) == 0,
              page.maximumMappingSize.rawValue >= UInt8(level),
              let mapping = HostMappingSize(rawValue: UInt8(level)),
              !guestMemory.invalidations.needsRetry(range: page.block(mapping), since: snapshot),
              let child = firstLeaf(below: table, level: level)
        else { return nil }
        _ = size
        let output = page.blockHostFrame(mapping).address.rawValue
        var leaf = child & ~(ExtendedPageTableBits.address | ExtendedPageTableBits.pageSize)
            | output | ExtendedPageTableBits.pageSize
        if !page.writable {
            leaf &= ~(ExtendedPageTableBits.write | ExtendedPageTableBits.mmuWritable | ExtendedPageTableBits.hostWritable)
        }
        if configuration.nxHugePages {
            leaf &= ~(ExtendedPageTableBits.execute | ExtendedPageTableBits.userExecute | ExtendedPageTableBits.savedExecute)
        }
        return leaf
    }

    /// A present leaf somewhere below the table entry `table` at `level`.
    @usableFromInline
    func firstLeaf(below table: UInt64, level: Int) -> UInt64? {
        let entries = memory.entries(at: format.childTable(of: table))
        let childLevel = level - 1
        for index in 0..<format.entriesPerTable {
            let entry = entries[index].load(ordering: .acquiring)
            guard format.isPresent(entry, atLevel: childLevel) else { continue }
            if !format.isTable(entry, atLevel: childLevel) { return entry }
            if let leaf = firstLeaf(below: entry, level: childLevel) { return leaf }
        }
        return nil
    }
}
