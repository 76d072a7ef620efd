import SLATCore
import SLATx86

/// The x86 TDP MMU as an eager split backend: like KVM's TDP MMU it splits
/// one level at a time (a 1 GiB leaf becomes a table of 2 MiB leaves, which
/// the engine then splits in turn), each split one table page filled with
/// the equivalent leaves (MMU-writable, host-writable, A/D and memory type
/// kept, so write-protect dirty logging's fast page fault restores write
/// access on the small leaves) and linked by one compare-and-exchange. EPT
/// needs no break-before-make and the translations do not change, but the
/// huge leaf is still invalidated at its size (batched, settled before the
/// engine drops the lock), as the fault path does: the invalidations the
/// small leaves later owe (write protection, zaps) carry their level as a
/// hint and would not reach a huge translation still cached.
extension ExtendedPageTableMMU: EagerSplitBackend {
    /// The MMU's table memory.
    @inlinable public var splitMemory: Memory { memory }

    /// The MMU's reclaimer.
    @inlinable public var splitReclaimer: EpochReclaimer<Memory> { reclaimer }

    /// ``MMUConfiguration/addressSpaceCount``.
    @inlinable public var splitAddressSpaceCount: Int { configuration.addressSpaceCount }

    /// The current root (the engine counts address spaces from
    /// ``splitAddressSpaceCount``; after teardown, the emptied root).
    @inlinable
    public func splitRoot(addressSpace: Int) -> HostPhysicalAddress { rootAddress(addressSpace) }

    /// Page-aligned, non-empty and inside the guest-physical width.
    @inlinable
    public func validateSplitRange(_ range: GuestPhysicalRange) throws(SLATError) {
        try table().validate(range)
    }

    /// One page: every split goes one level down.
    @inlinable
    public func tablePagesToSplit(level: Int, targetLevel: Int) -> Int { 1 }

    /// SLATCore's ``SLATCore/PageTable/splitLeaf(_:expected:level:mode:context:tableEntryBits:)``
    /// in shared mode (the leaf may be volatile: hardware A/D, fast faults);
    /// a won split is accounted by the MMU's one accounting point, which
    /// owes the huge leaf's invalidation at its size in `batch`.
    @inlinable
    public func splitHugeLeaf(
        _ pointer: EntryPointer, expected: inout UInt64, level: Int, address: GuestPhysicalAddress,
        targetLevel: Int, context: PageTableContext, batch: inout TLBFlushBatch
    ) -> LeafSplitOutcome {
        let leaf = expected
        let outcome = PageTable(format: format, memory: memory, root: rootAddress(0), reclaimer: reclaimer)
            .splitLeaf(pointer, expected: &expected, level: level, mode: .shared, context: context)
        if case .split(let child) = outcome {
            accountChange(old: leaf, new: format.tableEntry(child: child), address: address, level: level,
                          mode: .shared, batch: &batch)
        }
        return outcome
    }

    /// Flushes to ``tlb`` and retires pages through the reclaimer.
    @inlinable
    public func settleSplitBatch(_ batch: consuming TLBFlushBatch) {
        if batch.isEmpty { _ = batch.discard(); return }
        PageTable(format: format, memory: memory, root: rootAddress(0), reclaimer: reclaimer)
            .settle(batch, tlb: tlb, mode: .shared)
    }
}
