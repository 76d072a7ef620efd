import SLATCore
import Synchronization

// The page fault, as KVM's TDP MMU: resolve outside the lock, then install under
// the *shared* MMU lock with compare-and-exchange only.
extension ExtendedPageTableMMU {
    /// Handles an EPT violation of a vCPU: the lockless fast page fault
    /// first when the entry was present (``GuestPageFault/isPermissionFault``),
    /// or, with A/D flags off, when the violation may be an access-tracked
    /// leaf (those are not present to the hardware, so the exit qualification
    /// cannot tell them from an empty entry; only ``clearYoung(_:context:)``
    /// makes them, see `accessTrackingUsed`); else, or when the fast path
    /// cannot fix it, the full fault path.
    ///
    /// Full path: top up `vcpu`'s page cache (outside the lock); snapshot
    /// the invalidation sequence and resolve the memslot and host frame
    /// (from the vCPU's memo of its last memslot and host run while the
    /// sequence has not moved, see `ResolveCacheEntry`);
    /// choose the leaf level (memslot alignment and host mapping size,
    /// ``MMUConfiguration/maximumLeafLevel``, 4 KiB in a dirty-logged slot,
    /// 4 KiB for an instruction fetch under the NX-huge-page policy); take
    /// the lock shared; return ``FaultOutcome/retry`` if an invalidation
    /// covered the block meanwhile; walk from the root linking missing
    /// tables and splitting huge leaves by compare-and-exchange with pages
    /// from the cache (a lost exchange gives the page back and re-reads the
    /// entry); install the leaf by compare-and-exchange. A write that gets
    /// write access in a dirty-logged slot marks its dirty bitmap.
    ///
    /// Locking contract: the caller holds no MMU lock. `vcpu` belongs to the
    /// calling thread (its reader slot is used).
    /// TLB contract: a replaced translation (a table merged into a huge
    /// leaf, a leaf moved or reduced) and a huge leaf split on the way
    /// (invalidated at its size, so no later small invalidation can miss a
    /// cached huge entry) are invalidated before the lock is released; pure
    /// additions need no flush.
    ///
    /// - Throws: `SLATError/noMemslot(_:)` (MMIO: the VMM emulates it),
    ///   `SLATError/readOnlyMemslot(slot:frame:)` for a write to a
    ///   read-only slot, `SLATError/hostAddressNotMapped(_:)`,
    ///   `SLATError/hostPageReadOnly(_:)`, and
    ///   `SLATError/outOfTableMemory(needed:available:)` when the cache
    ///   cannot be topped up; for what the VMM passed:
    ///   `SLATError/readerSlotOutOfRange(_:slots:)`,
    ///   `SLATError/addressSpaceOutOfRange(_:count:)`,
    ///   `SLATError/guestAddressOutOfRange(_:limit:)` (an address the
    ///   format's walk would alias), `SLATError/outputAddressTooWide(_:outputBits:)`
    ///   for a host frame beyond the format's physical-address width, and
    ///   `SLATError/tornDown`. Nothing is changed when it throws.
    ///
    /// Root lifetime: while the vCPU has not reloaded the roots that
    /// ``invalidateAllRoots()`` replaced (``isRootReloadRequested(_:)``), the
    /// fault returns ``FaultOutcome/retry`` and changes nothing.
    @inlinable
    public func handleFault(_ fault: GuestPageFault, vcpu: PageTableContext) throws(SLATError) -> FaultOutcome {
        try validate(fault, vcpu: vcpu)
        // Early answer only (no top-up after teardown); the authoritative
        // check is the root generation under the lock.
        if isTornDown { throw .tornDown }
        // Without A/D flags an access-tracked leaf faults as not present, so
        // KVM tries every such fault fast. Until aging has made a leaf
        // access-tracked no not-present fault can be fixed that way; the
        // flag is a hint only (the full path fixes an access-tracked leaf
        // too, by installing the leaf afresh), so a relaxed load will do.
        if fault.isPermissionFault
            || (!format.accessedDirtyEnabled && accessTrackingUsed.load(ordering: .relaxed)) {
            switch fastPageFaultValidated(fault, vcpu: vcpu) {
            case .fixed(let level): return .fixed(level: level)
            case .spurious: return .spurious
            case .notFixable: break
            }
        }
        return try slowPageFaultValidated(fault, vcpu: vcpu)
    }

    /// Throws unless the VMM's inputs to a fault are in range: `vcpu`'s
    /// reader slot, the address space, and the address (below the format's
    /// input address size: the walk indexes only those bits, so a higher
    /// address would alias a low one). A torn-down MMU is found under the
    /// lock (its root generation), so the hot path loads nothing more here.
    @inlinable @inline(__always)
    func validate(_ fault: GuestPageFault, vcpu: PageTableContext) throws(SLATError) {
        _ = try checkedSlot(vcpu)
        try checkAddressSpace(fault.addressSpace)
        guard fault.address.rawValue >> UInt64(truncatingIfNeeded: format.inputAddressBits) == 0 else {
            throw .guestAddressOutOfRange(fault.address, limit: 1 &<< UInt64(truncatingIfNeeded: format.inputAddressBits))
        }
    }

    /// The full fault path of ``handleFault(_:vcpu:)-(GuestPageFault,_)`` without the fast
    /// page fault attempt. Same contracts and errors.
    @inlinable
    public func slowPageFault(_ fault: GuestPageFault, vcpu: PageTableContext) throws(SLATError) -> FaultOutcome {
        try validate(fault, vcpu: vcpu)
        if isTornDown { throw .tornDown }
        return try slowPageFaultValidated(fault, vcpu: vcpu)
    }

    /// ``slowPageFault(_:vcpu:)`` after ``validate(_:vcpu:)``.
    @inlinable
    func slowPageFaultValidated(_ fault: GuestPageFault, vcpu: PageTableContext) throws(SLATError) -> FaultOutcome {
        try topUp(vcpu)
        let write = fault.access == .write
        let slot = vcpu.readerSlot
        let page = try resolve(frame: fault.address.frame, write: write, slot: slot)
        guard page.hostFrame.address.rawValue >> UInt64(truncatingIfNeeded: format.outputAddressBits) == 0 else {
            throw .outputAddressTooWide(page.hostFrame.address, outputBits: format.outputAddressBits)
        }
        // The log this fault would mark, from the vCPU's memo (DirtyLogMemo).
        let log = page.dirtyLogging ? dirtyLog(containing: page.frame, slot: slot) : nil
        var plan = FaultPlan(page: page, access: fault.access, format: format, configuration: configuration,
                             logMode: log?.mode ?? .writeProtect)
        let exclusive = configuration.faultsTakeLockExclusively
        if exclusive {
            lock.lockExclusive()
            reclaimer.enterReadSection(slot: slot)
        } else {
            // One store announces the shared hold and the read section.
            lock.lockSharedEnteringReadSection(slot: slot)
        }
        var cleanup = FaultCleanup()
        let outcome: FaultOutcome
        let generation = rootGeneration.load(ordering: .relaxed)
        if loadedGenerations[slot].load(ordering: .relaxed) != generation
            && !recordFirstLoad(slot: slot, generation: generation) {
            // Torn down, or the vCPU must reload its roots first.
            outcome = .retry
        } else if tracker.needsRetry(range: plan.block, since: page.sequence) && !Self.ignoresInvalidationRetry {
            outcome = .retry
        } else {
            outcome = install(&plan, at: fault.address, addressSpace: fault.addressSpace, vcpu: vcpu, cleanup: &cleanup)
        }
        if cleanup.isNeeded { flushAfterFault(cleanup) }
        if exclusive {
            reclaimer.leaveReadSection(slot: slot)
            lock.unlockExclusive()
        } else {
            lock.unlockSharedLeavingReadSection(slot: slot)
        }
        if generation == Self.tornDownGeneration { throw .tornDown }
        if plan.marksDirty, case .fixed = outcome { log?.mark(page.frame) }
        return outcome
    }

    /// For a vCPU whose recorded root generation is not `generation`:
    /// records `generation` and returns `true` if the vCPU has loaded
    /// nothing yet (it can only use the current EPTP); `false` if it must
    /// reload first or the MMU is torn down. Lock held.
    @usableFromInline @inline(never)
    func recordFirstLoad(slot: Int, generation: UInt64) -> Bool {
        guard generation != Self.tornDownGeneration && loadedGenerations[slot].load(ordering: .relaxed) == 0 else {
            return false
        }
        loadedGenerations[slot].store(generation, ordering: .sequentiallyConsistent)
        return true
    }

    /// Accounts what the fault replaced (a table's subtree is ours, rule 2)
    /// and flushes the replaced and split translations; lock still held.
    /// A replacement that owes nothing (a leaf that only gained access)
    /// settles nothing.
    @inlinable
    func flushAfterFault(_ cleanup: FaultCleanup) {
        var batch = TLBFlushBatch()
        if cleanup.splitLevel >= 0 {
            accountChange(old: cleanup.splitLeaf, new: cleanup.splitTable, address: GuestPhysicalAddress(cleanup.splitAddress),
                          level: cleanup.splitLevel, mode: .shared, batch: &batch)
        }
        if cleanup.level >= 0 {
            accountChange(old: cleanup.old, new: cleanup.new, address: GuestPhysicalAddress(cleanup.address),
                          level: cleanup.level, mode: .shared, batch: &batch)
        }
        if batch.isEmpty {
            _ = batch.discard()
        } else {
            settle(batch)
        }
    }

    /// The walk and installs of the fault path. Lock held shared, inside a
    /// read section. A 4 KiB fault starts at the vCPU's remembered leaf
    /// table of the same 2 MiB region while no table has been unlinked
    /// since it was remembered (``LeafTableMemo``), else at the root.
    @inlinable
    func install(
        _ plan: inout FaultPlan, at address: GuestPhysicalAddress, addressSpace: Int,
        vcpu: PageTableContext, cleanup: inout FaultCleanup
    ) -> FaultOutcome {
        let format = self.format
        let frozen = format.frozenEntry
        let rootAddress = self.rootAddress(addressSpace).rawValue
        // Read inside the lock and read section (see LeafTableMemo).
        let generation = tableUnlinks.load(ordering: .sequentiallyConsistent)
        let slotEntry = resolveCacheEntry(slot: vcpu.readerSlot)
        let region = address.rawValue & ~(format.entrySize(atLevel: 1) &- 1)
        var level = format.rootLevel
        var table = memory.entries(at: HostPhysicalAddress(rootAddress))
        let memo = slotEntry.pointee.leafTable
        if plan.level == 0 && memo.table != 0 && memo.generation == generation && memo.root == rootAddress
            && memo.addressSpace == addressSpace && memo.region == region {
            // Same 2 MiB region, no table unlinked since: start at level 0.
            level = 0
            table = memory.entries(at: HostPhysicalAddress(memo.table))
        }
        // One level down into table page `child`; a leaf table is
        // remembered for this vCPU's next fault in the region.
        func enter(_ child: HostPhysicalAddress) {
            table = memory.entries(at: child)
            level -= 1
            if level == 0 {
                slotEntry.pointee.leafTable = LeafTableMemo(
                    table: child.rawValue, generation: generation, root: rootAddress,
                    addressSpace: addressSpace, region: region)
            }
        }
        func descend(into entry: UInt64) { enter(format.childTable(of: entry)) }
        while true {
            let pointer = table + format.index(of: address, atLevel: level)
            _explorationTableEntry()
            var entry = pointer.pointee.load(ordering: .acquiring)
            entryLoop: while true {
                if entry == frozen { return .retry }
                let present = format.isPresent(entry, atLevel: level)
                let isTable = present && format.isTable(entry, atLevel: level)
                if level == plan.level {
                    if isTable && entry & ExtendedPageTableBits.nxHugePageSplit != 0 {
                        // An instruction fetch split this block: never put a
                        // huge leaf back over it; map inside it instead.
                        plan.lowerLevel()
                        descend(into: entry)
                        break entryLoop
                    }
                    let new = plan.leaf(atLevel: level)
                    if entry == new { return .spurious }
                    if present && !isTable && plan.isSatisfied(by: entry, atLevel: level) { return .spurious }
                    _explorationTableEntry()
                    let (exchanged, original) = pointer.pointee.compareExchange(
                        expected: entry, desired: new, ordering: .acquiringAndReleasing)
                    if !exchanged {
                        entry = original
                        continue entryLoop
                    }
                    if isTable || (present && obligations(ofReplacingLeaf: entry, by: new, atLevel: level) != (false, false)) {
                        // Table → huge leaf (we own the subtree, rule 2) or
                        // a leaf replaced that owes something: accounted,
                        // flushed before unlocking.
                        cleanup.replaced(
                            address: address.rawValue & ~(format.entrySize(atLevel: level) &- 1), level: level,
                            old: entry, new: new)
                    }
                    return .fixed(level: level)
                }
                if isTable {
                    descend(into: entry)
                    break entryLoop
                }
                let marker = plan.splitMarker(atLevel: level)
                if !present {
                    if let page = helpers.linkEmptyTable(
                        pointer, expected: &entry, level: level, mode: .shared, context: vcpu, softwareBits: marker) {
                        if marker != 0 { recordNXSplit(addressSpace: addressSpace, address: address, level: level) }
                        enter(page)
                        break entryLoop
                    }
                    if vcpu.pageCache.count == 0 { return .retry }
                    continue entryLoop
                }
                // A huge leaf above the level we need: split it into an
                // equivalent table, then go on inside it.
                switch helpers.splitLeaf(pointer, expected: &entry, level: level, mode: .shared, context: vcpu,
                                         tableEntryBits: marker) {
                case .split(let child):
                    cleanup.split(address: address.rawValue & ~(format.entrySize(atLevel: level) &- 1), level: level,
                                  leaf: entry, table: format.tableEntry(child: child) | marker)
                    if marker != 0 { recordNXSplit(addressSpace: addressSpace, address: address, level: level) }
                    enter(child)
                    break entryLoop
                case .lostRace:
                    continue entryLoop
                case .cacheEmpty:
                    return .retry
                }
            }
        }
    }

    /// Remembers an NX-huge-page split for ``recoverNXHugePages(maximumCount:)``.
    @usableFromInline
    func recordNXSplit(addressSpace: Int, address: GuestPhysicalAddress, level: Int) {
        let split = NXHugePageSplit(
            addressSpace: addressSpace, address: address.alignedDown(to: format.entrySize(atLevel: level)), level: level)
        listLock.withLock { nxSplits.append(split) }
    }
}

/// What a fault replaced and must flush before it unlocks: a huge leaf it
/// split on the way (its translation may be cached at its size, which the
/// smaller invalidations owed later would not reach), and a table or leaf it
/// replaced at its level.
@frozen @usableFromInline
struct FaultCleanup {
    @usableFromInline var address: UInt64 = 0
    @usableFromInline var level = -1
    /// The entry replaced at `level` (a leaf, or a table replaced by a huge leaf) and its replacement.
    @usableFromInline var old: UInt64 = 0
    @usableFromInline var new: UInt64 = 0
    @usableFromInline var splitAddress: UInt64 = 0
    @usableFromInline var splitLevel = -1
    /// The huge leaf split and the table entry that replaced it.
    @usableFromInline var splitLeaf: UInt64 = 0
    @usableFromInline var splitTable: UInt64 = 0

    @inlinable init() {}

    @inlinable var isNeeded: Bool { level >= 0 || splitLevel >= 0 }

    @inlinable
    mutating func replaced(address: UInt64, level: Int, old: UInt64, new: UInt64) {
        self.address = address
        self.level = level
        self.old = old
        self.new = new
    }

    @inlinable
    mutating func split(address: UInt64, level: Int, leaf: UInt64, table: UInt64) {
        // The first split is the largest; it covers any below it.
        if splitLevel < 0 {
            splitAddress = address
            splitLevel = level
            splitLeaf = leaf
            splitTable = table
        }
    }
}
