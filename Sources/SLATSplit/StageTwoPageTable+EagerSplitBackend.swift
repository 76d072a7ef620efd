import SLATArm64
import SLATCore

/// Arm stage 2 as an eager split backend: like `kvm_pgtable_stage2_split`
/// each block is replaced at once by a fully populated subtree down to the
/// target level (a 1 GiB block to 4 KiB takes 1 + 512 pages), built from
/// the split cache and linked by break-before-make through
/// `StageTwoPageTable.splitBlock`, whose invalidation of the break is done
/// before the table is written: nothing is owed afterwards.
extension StageTwoPageTable: EagerSplitBackend {
    /// The tables' memory.
    @inlinable public var splitMemory: Memory { table.memory }

    /// The tables' reclaimer.
    @inlinable public var splitReclaimer: EpochReclaimer<Memory> { table.reclaimer }

    /// One VMID, one root.
    @inlinable public var splitAddressSpaceCount: Int { 1 }

    /// The root (it never changes).
    @inlinable
    public func splitRoot(addressSpace: Int) -> HostPhysicalAddress { table.root }

    /// Page-aligned, non-empty and inside the IPA size.
    @inlinable
    public func validateSplitRange(_ range: GuestPhysicalRange) throws(SLATError) {
        if isDestroyed { throw .tornDown }
        try table.validate(range)
    }

    /// The subtree from `level` down to `targetLevel`.
    @inlinable
    public func tablePagesToSplit(level: Int, targetLevel: Int) -> Int {
        tablePagesForSubtree(level: level, leafLevel: targetLevel)
    }

    /// `splitBlock` to `targetLevel`.
    @inlinable
    public func splitHugeLeaf(
        _ pointer: EntryPointer, expected: inout UInt64, level: Int, address: GuestPhysicalAddress,
        targetLevel: Int, context: PageTableContext, batch: inout TLBFlushBatch
    ) -> LeafSplitOutcome {
        splitBlock(pointer, expected: &expected, level: level, address: address, leafLevel: targetLevel, context: context)
    }

    /// Flushes to the VMID and retires pages through the reclaimer.
    @inlinable
    public func settleSplitBatch(_ batch: consuming TLBFlushBatch) {
        if batch.isEmpty { _ = batch.discard(); return }
        settle(batch, mode: .shared)
    }
}
