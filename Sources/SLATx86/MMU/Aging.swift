import SLATCore
import Synchronization

// Aging for the host's page reclaim (mmu-notifier test/clear young):
// without the MMU lock, inside a reclaimer read section.
extension ExtendedPageTableMMU {
    /// Whether any leaf mapping guest frames backed by the host range
    /// `range` was accessed since it was last cleared: its accessed bit is
    /// set (A/D flags on), or it is not access-tracked (A/D flags off).
    ///
    /// Locking contract: takes no lock; uses `context`'s reader slot (one
    /// per thread). Changes nothing.
    /// - Throws: `SLATError/readerSlotOutOfRange(_:slots:)`, `SLATError/tornDown`.
    @inlinable
    public func testYoung(_ range: HostVirtualRange, context: PageTableContext) throws(SLATError) -> Bool {
        _ = try checkedSlot(context)
        try checkNotTornDown()
        var young = false
        visitLeaves(backedBy: range, context: context) { pointer, entry, _, _ in
            if isYoung(entry) { young = true }
            return !young
        }
        return young
    }

    /// Clears the young state of every leaf mapping guest frames backed by
    /// `range`; returns whether any was young. With A/D flags on the
    /// accessed bit is cleared by compare-and-exchange (hardware sets it
    /// again on the next walk; no flush, as KVM's clear-young: a cached
    /// translation may hide an access until it is evicted). With A/D flags
    /// off the leaf is made access-tracked (read and execute saved, every
    /// access bit cleared) so the next access faults and the fast page fault
    /// restores it; those leaves lost access, so they are invalidated
    /// before this returns (and from then on ``handleFault(_:vcpu:)`` tries
    /// the fast page fault for not-present violations too).
    ///
    /// Each change is accounted (`accountChange(old:new:address:level:mode:batch:)`).
    ///
    /// Locking contract: takes no lock; uses `context`'s reader slot.
    /// - Throws: `SLATError/readerSlotOutOfRange(_:slots:)`, `SLATError/tornDown`.
    @inlinable @discardableResult
    public func clearYoung(_ range: HostVirtualRange, context: PageTableContext) throws(SLATError) -> Bool {
        _ = try checkedSlot(context)
        try checkNotTornDown()
        var young = false
        var batch = TLBFlushBatch()
        let accessedBits = format.accessedDirtyEnabled
        // Before the first leaf becomes access-tracked (a hint for faults).
        if !accessedBits && !accessTrackingUsed.load(ordering: .relaxed) {
            accessTrackingUsed.store(true, ordering: .sequentiallyConsistent)
        }
        visitLeaves(backedBy: range, context: context) { pointer, entry, address, level in
            let change = updateLeaf(pointer, expected: entry) { current in
                guard isYoung(current) else { return nil }
                return accessedBits ? current & ~ExtendedPageTableBits.accessed : Self.accessTrackedForm(of: current)
            }
            if let (old, new) = change {
                young = true
                // An access-tracked leaf lost its access: owed a flush.
                accountChange(old: old, new: new, address: address, level: level, mode: .shared, batch: &batch)
            }
            return true
        }
        settle(batch)
        return young
    }

    /// Whether a present leaf counts as recently accessed.
    @inlinable
    func isYoung(_ entry: UInt64) -> Bool {
        if format.accessedDirtyEnabled { return entry & ExtendedPageTableBits.accessed != 0 }
        return entry & ExtendedPageTableBits.accessTracked == 0
    }

    /// Calls `body` for each present leaf of every address space mapping a
    /// guest frame backed by `range`, inside a read section and without the
    /// lock, until it returns `false`.
    @inlinable
    func visitLeaves(
        backedBy range: HostVirtualRange, context: PageTableContext,
        _ body: (EntryPointer, UInt64, GuestPhysicalAddress, Int) -> Bool
    ) {
        let slot = context.readerSlot
        reclaimer.enterReadSection(slot: slot)
        defer { reclaimer.leaveReadSection(slot: slot) }
        // Torn down meanwhile: teardown set this before waiting for read sections.
        guard rootGeneration.load(ordering: .sequentiallyConsistent) != Self.tornDownGeneration else { return }
        for memslot in guestMemory.memslots(overlapping: range) {
            guard let frames = memslot.frames(backedBy: range) else { continue }
            for space in 0..<configuration.addressSpaceCount {
                var iterator = PageTableIterator(
                    format: format, memory: memory, root: rootAddress(space), range: frames.physicalRange)
                while iterator.isValid {
                    if format.isLeaf(iterator.snapshot, atLevel: iterator.level) {
                        if !body(iterator.pointer, iterator.snapshot, iterator.address, iterator.level) { return }
                    }
                    iterator.advance()
                }
            }
        }
    }
}
