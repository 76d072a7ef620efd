import SLATCore
import Synchronization

// Huge-page recovery after dirty logging: collapse tables back into huge
// leaves in place.
extension ExtendedPageTableMMU {
    /// Replaces each table of `frames` that stands where a huge leaf could
    /// be — its block lies in one memslot that does not log, the host maps
    /// the block with a page at least that large (``SLATCore/GuestMemory/resolve(frame:write:)``'s
    /// maximum mapping size), no invalidation of it is in flight, and it is
    /// not an NX-huge-page split — by one huge leaf built from a present
    /// leaf below it (same permissions, memory type and software bits,
    /// output the host block's start), largest level first. Tables without
    /// any present leaf stay. The replaced subtrees go to the reclaimer.
    ///
    /// Locking contract: takes the MMU lock exclusively.
    /// TLB contract: one flush for everything collapsed, before the lock is
    /// released. Returns the number of huge leaves installed.
    @inlinable @discardableResult
    public func recoverHugePages(in frames: GuestFrameRange) -> Int {
        let snapshot = guestMemory.invalidations.snapshot()
        lock.lockExclusive()
        defer { lock.unlockExclusive() }
        var batch = TLBFlushBatch()
        var recovered = 0
        let top = min(configuration.maximumLeafLevel, 2)
        for space in 0..<configuration.addressSpaceCount where top > 0 {
            var iterator = PageTableIterator(
                format: format, memory: memory, root: root(addressSpace: space), range: frames.physicalRange, minimumLevel: 1)
            while iterator.isValid {
                let level = iterator.level
                let entry = iterator.snapshot
                if level <= top && format.isPresent(entry, atLevel: level) && format.isTable(entry, atLevel: level)
                    && entry & ExtendedPageTableBits.nxHugePageSplit == 0,
                   let leaf = collapsedLeaf(for: iterator.address, table: entry, level: level, snapshot: snapshot) {
                    let (exchanged, _) = iterator.pointer.pointee.compareExchange(
                        expected: entry, desired: leaf, ordering: .acquiringAndReleasing)
                    if exchanged {
                        helpers.detachSubtree(ofTableEntry: entry, level: level, mode: .exclusive, into: &batch)
                        batch.invalidate(range: GuestPhysicalRange(start: iterator.address, size: format.entrySize(atLevel: level)))
                        iterator.snapshot = leaf
                        recovered += 1
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
