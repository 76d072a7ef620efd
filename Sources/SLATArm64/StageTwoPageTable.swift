import SLATCore
import Synchronization

/// The stage-2 translation tables of one VM: the `kvm_pgtable` of KVM/arm64
/// for one VMID, built on SLATCore's `PageTable`.
///
/// It owns the tables (any granule and IPA size), the VM's TLB context (one
/// VMID) and the VMM's ``CacheMaintenance`` hooks, and gives the operations
/// of the stage-2 MMU:
///
/// - `map(_:to:attributes:maximumLevel:mode:context:refusingPermissionOnlyChanges:)`
///   installs leaves at the largest level allowed, splits a block a smaller
///   mapping lands in (break-before-make: the block is exchanged for the
///   locked invalid marker, invalidated by address with its level, then the
///   new table written) and merges tables a block replaces. The merge is
///   anchored at the table entry the block replaces: it is exchanged for the
///   locked marker (the anchor), the subtree below it is detached — in a
///   shared walk every one of its entries is locked too, so a walker still
///   inside fails its exchange and retries — and only when the whole
///   subtree is torn down is the VMID invalidated, **once**, before the
///   block is written over the anchor. A by-address invalidation there
///   would leave the subtree's smaller leaves cached beside the new block:
///   a TLB conflict abort.
/// - ``unmap(_:mode:context:)``, `writeProtect(_:mode:context:batch:)`,
///   ``makeYoung(_:mode:context:)``, ``testAndClearYoung(_:mode:context:)``,
///   ``relaxPermissions(_:grant:mode:context:)``, ``flush(_:context:)``.
/// - Unlinked subtrees for the eager split engine:
///   ``createUnlinkedSubtree(output:attributes:level:leafLevel:context:)``,
///   ``freeUnlinkedSubtree(_:level:mode:)`` and
///   ``splitBlocks(in:leafLevel:mode:context:)``.
///
/// Locking contract: the object holds no lock. Every changing operation
/// takes the `WalkMode` in which the caller holds the VM's MMU lock:
/// faults and splits run shared (every entry change is a compare-and-
/// exchange; a locked entry met means "another thread owns it, retry"),
/// unmaps, teardown and notifier zaps run exclusive. `context` is the
/// calling thread's (vCPU's) page cache and reader slot.
///
/// TLB contract: every operation except `writeProtect(_:mode:context:batch:)`
/// and ``testAndClearYoung(_:mode:context:)`` has completed the
/// invalidations it owes before it returns (rule 3), and frees table pages
/// only after them (through the reclaimer in shared mode).
/// `writeProtect(_:mode:context:batch:)` leaves them in the caller's batch
/// (KVM's caller-flushes write protection); clearing the access flag owes
/// none (aging is advisory, as in KVM).
public final class StageTwoPageTable<Memory: TableMemory, T: TLB, Caches: CacheMaintenance>: Sendable {
    /// The tables.
    public let table: PageTable<StageTwoFormat, Memory>
    /// The VM's translation context (its VMID on every CPU).
    public let tlb: T
    /// The VMM's cache maintenance.
    public let caches: Caches
    /// The VM's VMID.
    public let vmid: UInt32
    /// The VMID width `VTCR_EL2.VS` configures.
    public let vmidSize: VMIDSize
    /// The `VTTBR_EL2` value: the root tagged with the VMID.
    public let translationTableBase: StageTwoTranslationTableBase
    /// The dirty bitmaps of the memslots that log writes
    /// (``enableDirtyLogging(memslot:guestMemory:lock:context:protection:)``).
    public let dirtyLogs = StageTwoDirtyLogs()
    /// Set once by ``destroy()``; every operation then throws ``SLATError/tornDown``.
    @usableFromInline let destroyed = Atomic<Bool>(false)
    /// Each reader slot's fault memo of its last memslot and host run
    /// (``StageTwoResolveMemo``), used by ``StageTwoFaultHandler``.
    @usableFromInline let faultMemos: StageTwoFaultMemos

    /// Empty tables in `memory` for the VM `vmid`.
    ///
    /// - Parameters:
    ///   - readerSlots: vCPU threads that may walk shared at once.
    ///   - format: the stage-2 format (granule, IPA and PA sizes); its memory-attribute encoding follows `caches.forcesWriteBack`.
    ///   - memory: the table memory; its page size must be the granule.
    ///   - tlb: the VM's TLB (its VMID on every CPU): where invalidations go.
    ///   - caches: the VMM's cache maintenance (data-cache clean, instruction-cache invalidation).
    ///   - vmid: the VM's VMID.
    ///   - vmidSize: the VMID width `VTCR_EL2.VS` configures.
    /// - Throws: `SLATError/vmidOutOfRange(_:bits:)`,
    ///   `SLATError/unsupportedGranule(_:)` (memory page size not the
    ///   granule), `SLATError/outOfTableMemory(needed:available:)`, and
    ///   root placement errors of ``StageTwoTranslationTableBase``,
    ///   `SLATError/writeBackForcingMismatch(format:caches:)` when the
    ///   format asks for FWB encodings but `caches.forcesWriteBack` is
    ///   false. When the hooks force write-back (`HCR_EL2.FWB` = 1) the
    ///   tables use `format.forcingWriteBack(true)`: FWB MemAttr encodings,
    ///   and no data-cache cleans.
    public init(
        format: StageTwoFormat, memory: Memory, tlb: T, caches: Caches,
        vmid: UInt32, vmidSize: VMIDSize = .bits16, readerSlots: Int = 64
    ) throws(SLATError) {
        guard vmid <= vmidSize.maximum else { throw .vmidOutOfRange(vmid, bits: vmidSize.bitCount) }
        // The hooks state HCR_EL2.FWB; the leaves are encoded for it.
        guard !format.forcesWriteBack || caches.forcesWriteBack else {
            throw .writeBackForcingMismatch(format: format.forcesWriteBack, caches: caches.forcesWriteBack)
        }
        let format = format.forcingWriteBack(caches.forcesWriteBack)
        let table = try PageTable(format: format, memory: memory, readerSlots: readerSlots)
        do {
            translationTableBase = try StageTwoTranslationTableBase(
                format: format, root: table.root, vmid: vmid, vmidSize: vmidSize)
        } catch {
            table.destroy()
            throw error
        }
        self.table = table
        self.faultMemos = StageTwoFaultMemos(slotCount: table.reclaimer.slotCount)
        self.tlb = tlb
        self.caches = caches
        self.vmid = vmid
        self.vmidSize = vmidSize
    }

    /// The stage-2 format.
    @inlinable public var format: StageTwoFormat { table.format }

    /// The `VTCR_EL2` value for these tables.
    public var translationControl: StageTwoTranslationControl {
        StageTwoTranslationControl(format: format, vmidSize: vmidSize)
    }


    // MARK: Map

    /// Maps `range` to `output` with `attributes` (the access flag is always
    /// set, as KVM maps), in one walk that installs leaves at the largest
    /// level the alignment of both addresses, the range and `maximumLevel`
    /// allow, splits blocks a smaller leaf lands in and merges tables a block
    /// covers (see the type's documentation for break-before-make and the
    /// anchored merge's single VMID-wide invalidation).
    ///
    /// Cache maintenance for the new translation (data-cache clean of a
    /// cacheable mapping, instruction-cache invalidation of an executable
    /// one) is done for each leaf the walk writes, before it writes it, so
    /// before any vCPU can use it; leaves already as wanted and the copies
    /// of a split block (same output and attributes) need none, as KVM
    /// cleans only the leaves it installs.
    ///
    /// - Parameters:
    ///   - range: the guest range, granule-aligned and inside the IPA size.
    ///   - output: the host-physical address `range.start` maps to, aligned like `range`.
    ///   - attributes: permissions, memory type and software bits of every leaf.
    ///   - context: the calling thread's page cache and reader slot.
    ///   - maximumLevel: the largest level a leaf may use; it must hold
    ///     leaves in this granule. `nil`: the largest block level.
    ///   - mode: how the caller holds the MMU lock.
    ///   - refusingPermissionOnlyChanges: leave a live leaf that only
    ///     differs in permissions as it is and report
    ///     `MapOutcome/refusedPermissionOnlyChange` (the fault path).
    ///   - refill: `PageCacheRefill/never` when the caller holds the MMU
    ///     lock and must not allocate under it: a cache that runs short
    ///     stops the walk with `MapOutcome/stopped(_:)` (what was done is
    ///     invalidated and settled); the caller drops the lock, tops the
    ///     cache up, retakes the lock and maps again from the resume
    ///     address. `PageCacheRefill/fromMemory` (the default) allocates.
    /// - Returns: the outcome and the table pages freed.
    /// - Throws: before any change: `SLATError/emptyRange`,
    ///   `SLATError/misalignedGuestAddress(_:alignment:)`,
    ///   `SLATError/misalignedSize(_:alignment:)`,
    ///   `SLATError/guestRangeOutOfBounds(_:limit:)` (IPA past the
    ///   configured size), `SLATError/misalignedOutputAddress(_:alignment:)`,
    ///   `SLATError/outputAddressTooWide(_:outputBits:)` (beyond the PA
    ///   size), `SLATError/unsupportedLevel(_:)` (no block at that level
    ///   in this granule), attribute errors, reader-slot and table-memory errors.
    @inlinable @discardableResult
    public func map(
        _ range: GuestPhysicalRange, to output: HostPhysicalAddress, attributes: LeafAttributes,
        maximumLevel: Int? = nil, mode: WalkMode = .exclusive, context: PageTableContext,
        refusingPermissionOnlyChanges: Bool = false, refill: PageCacheRefill = .fromMemory
    ) throws(SLATError) -> StageTwoMapResult {
        try checkLive()
        var attributes = attributes
        attributes.accessed = true
        try table.validate(range)
        try table.validateOutput(output, size: range.size)
        try validateLeafAttributes(attributes)
        if let maximumLevel, maximumLevel < 0 || maximumLevel > format.rootLevel || !format.canHoldLeaf(atLevel: maximumLevel) {
            throw .unsupportedLevel(maximumLevel)
        }
        try validateReaderSlot(of: context)
        var batch = TLBFlushBatch()
        let outcome: MapOutcome
        do {
            outcome = try table.map(
                range, to: output, attributes: attributes, maximumLevel: maximumLevel, mode: mode,
                context: context, batch: &batch, tlb: tlb,
                refusingPermissionOnlyChanges: refusingPermissionOnlyChanges, refill: refill,
                preparingLeaves: StageTwoLeafPreparation(caches: caches, attributes: attributes))
        } catch {
            settle(batch, mode: mode)
            throw error
        }
        let freed = batch.pendingPageCount
        settle(batch, mode: mode)
        return StageTwoMapResult(outcome: outcome, freedTablePages: freed)
    }

    // MARK: Unmap, write protection, flush

    /// Removes every translation in `range`: leaves are cleared and
    /// invalidated by address with their level (or, past a handful, by one
    /// range invalidation), tables wholly inside the range are unlinked and
    /// invalidated, tables left empty are freed, a block straddling an end
    /// is split first (break-before-make). Then, unless stage 2 forces
    /// write-back, the data cache is cleaned for every cacheable leaf that
    /// was removed, so the host sees what the guest wrote.
    ///
    /// Completes its invalidations before returning; frees table pages
    /// after them (through the reclaimer in shared mode).
    ///
    /// - Throws: range errors, reader-slot errors, and
    ///   `SLATError/outOfTableMemory(needed:available:)` only when a block
    ///   straddling an end must be split — all before any change.
    @inlinable
    public func unmap(_ range: GuestPhysicalRange, mode: WalkMode = .exclusive, context: PageTableContext) throws(SLATError) {
        try checkLive()
        try table.validate(range)
        try validateReaderSlot(of: context)
        let cleaned = caches.forcesWriteBack ? [] : cacheableLeaves(in: range, mode: mode, context: context)
        var batch = TLBFlushBatch()
        do {
            try table.unmap(range, mode: mode, context: context, batch: &batch, tlb: tlb)
        } catch {
            settle(batch, mode: mode)
            throw error
        }
        settle(batch, mode: mode)
        for leaf in cleaned {
            let (output, size) = clip(leaf, to: range)
            caches.cleanDataCacheToPointOfCoherency(output, size: size)
        }
    }

    /// Revokes write access in `range` for dirty logging: each leaf that
    /// loses it gets ``StageTwoDescriptorBits/mmuWritable``, so that the
    /// fault handler's fast path may give it back without the MMU lock and
    /// log the write. To remove write access for any other reason use
    /// `map` with the new permissions or `table.changePermissions`, which
    /// clear the bit. The invalidations
    /// owed are added to `batch`; the caller settles it with
    /// ``settle(_:mode:)`` — at once, or after more changes (KVM's
    /// caller-flushes write protection).
    ///
    /// - Parameters:
    ///   - refill: `PageCacheRefill/never` when the caller holds
    ///     the MMU lock and must not allocate under it: a block to split with
    ///     too few cached pages stops the walk there and the shortfall is
    ///     returned (drop the lock, top up, retake, call again from its
    ///     resume address). The default allocates.
    ///   - range: the guest range, granule-aligned and inside the IPA size.
    ///   - mode: how the caller holds the MMU lock (`.shared` inside a reclaimer read section).
    ///   - context: the calling thread's page cache and reader slot.
    ///   - batch: receives the invalidations owed and the pages to free after them.
    /// - Returns: `nil` when the whole range is protected, else where it
    ///   stopped for pages.
    /// - Throws: range and reader-slot errors, and
    ///   `SLATError/outOfTableMemory(needed:available:)` when a block
    ///   straddling an end must be split — before any change.
    @inlinable @discardableResult
    public func writeProtect(
        _ range: GuestPhysicalRange, mode: WalkMode = .exclusive, context: PageTableContext,
        batch: inout TLBFlushBatch, refill: PageCacheRefill = .fromMemory
    ) throws(SLATError) -> PageCacheShortfall? {
        try checkLive()
        return try table.changePermissions(
            range, revoke: .write, mode: mode, context: context, batch: &batch, tlb: tlb, refill: refill,
            forDirtyLogging: true)
    }

    /// Issues what `batch` owes to this VM's TLB context, then frees its
    /// pages after a grace period: through the reclaimer in shared mode;
    /// in exclusive mode they are retired and the call waits for the read
    /// sections that may still reach them — the fault handler's fast path
    /// walks without the MMU lock, so even an exclusive holder cannot free
    /// an unlinked page at once (Docs/concurrency.md, "Reclamation").
    @inlinable
    public func settle(_ batch: consuming TLBFlushBatch, mode: WalkMode) {
        if mode == .exclusive && batch.pendingPageCount > 0 {
            table.settle(batch, tlb: tlb, mode: .shared)
            table.reclaimer.synchronize()
        } else {
            table.settle(batch, tlb: tlb, mode: mode)
        }
    }

    /// Throws unless `attributes` can be encoded and leave the MMU's
    /// software bit alone.
    ///
    /// - Throws: what ``StageTwoFormat/validate(_:)`` throws, and
    ///   `SLATError/softwareBitReservedByMMU(_:reserved:)` for software bit
    ///   3 (``StageTwoDescriptorBits/mmuWritable``).
    @inlinable
    public func validateLeafAttributes(_ attributes: LeafAttributes) throws(SLATError) {
        try format.validate(attributes)
        let reserved = StageTwoDescriptorBits.mmuWritableSoftwareBit
        if attributes.softwareBits & reserved != 0 {
            throw .softwareBitReservedByMMU(attributes.softwareBits, reserved: reserved)
        }
    }

    /// Cleans the data cache to the Point of Coherency for every cacheable
    /// leaf overlapping `range` (KVM's `kvm_pgtable_stage2_flush`), unless
    /// stage 2 forces write-back. Changes no entry; takes no MMU lock of its
    /// own (call it with the lock held in either mode).
    ///
    /// - Returns: the cleans issued.
    /// - Throws: range errors.
    @inlinable @discardableResult
    public func flush(_ range: GuestPhysicalRange, context: PageTableContext) throws(SLATError) -> Int {
        try checkLive()
        try table.validate(range)
        try validateReaderSlot(of: context)
        if caches.forcesWriteBack { return 0 }
        let leaves = cacheableLeaves(in: range, mode: .shared, context: context)
        for leaf in leaves {
            let (output, size) = clip(leaf, to: range)
            caches.cleanDataCacheToPointOfCoherency(output, size: size)
        }
        return leaves.count
    }

    /// Tears the VM's tables down: invalidates the VMID, then frees every
    /// table page below the root and empties the root (kept until this
    /// object goes away, so a walk of ``table`` finds nothing rather than a
    /// freed page). Idempotent. Every other operation then throws
    /// `SLATError/tornDown`; a notifier zap does nothing.
    ///
    /// Locking contract: the caller holds the MMU lock exclusively (the same
    /// lock its fault handler and notifier binding take), so no operation is
    /// in flight. TLB contract: the VMID is invalidated before any page is
    /// freed.
    @inlinable
    public func destroy() {
        guard !destroyed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        tlb.invalidateAll()
        table.clearRoot()
    }

    /// Whether ``destroy()`` has run.
    @inlinable public var isDestroyed: Bool { destroyed.load(ordering: .acquiring) }

    deinit {
        // Only a destroyed table's VMID is known to be invalidated; its
        // emptied root goes now that no one can hold this object.
        if destroyed.load(ordering: .acquiring) { table.destroy() }
    }

    /// Throws ``SLATError/tornDown`` once ``destroy()`` has run.
    @inlinable
    func checkLive() throws(SLATError) {
        if destroyed.load(ordering: .acquiring) { throw .tornDown }
    }

    // MARK: Helpers

    /// The cacheable leaves overlapping `range`, read inside a read section.
    @inlinable
    func cacheableLeaves(in range: GuestPhysicalRange, mode: WalkMode, context: PageTableContext) -> [LeafMapping] {
        if mode == .shared { table.reclaimer.enterReadSection(slot: context.readerSlot) }
        defer { if mode == .shared { table.reclaimer.leaveReadSection(slot: context.readerSlot) } }
        return table.leaves(in: range).filter {
            $0.attributes.memoryType == .writeBack || $0.attributes.memoryType == .writeThrough
        }
    }

    /// The part of `leaf`'s output that `range` covers.
    @inlinable
    func clip(_ leaf: LeafMapping, to range: GuestPhysicalRange) -> (HostPhysicalAddress, UInt64) {
        let start = max(leaf.guestAddress.rawValue, range.start.rawValue)
        let end = min(leaf.guestAddress.rawValue &+ leaf.size, range.end.rawValue)
        return (leaf.output.advanced(by: start &- leaf.guestAddress.rawValue), end &- start)
    }

    /// Throws unless `context`'s reader slot exists in the reclaimer.
    @inlinable @inline(__always)
    func validateReaderSlot(of context: PageTableContext) throws(SLATError) {
        let slot = context.readerSlot
        guard slot >= 0 && slot < table.reclaimer.slotCount else {
            throw .readerSlotOutOfRange(slot, slots: table.reclaimer.slotCount)
        }
    }
}
