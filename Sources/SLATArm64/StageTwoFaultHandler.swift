import SLATCore

/// The stage-2 page-fault handler of one VM: KVM/arm64's `user_mem_abort`
/// and `handle_access_fault` over SLAT's guest memory model.
///
/// For a fault it resolves the frame (memslot, host frame, host mapping
/// size, dirty logging, invalidation snapshot), chooses the mapping size —
/// the smallest page while the memslot logs dirty pages, else the largest
/// block the host mapping and the memslot's alignment allow — and the
/// permissions (read; write when the host page is writable, except for a
/// read while dirty logging, so the first write is logged; execute on an
/// instruction fetch), tops up the vCPU's page cache, and only then takes
/// the MMU lock **shared**:
///
/// - if an invalidation of the range is in flight or ended since the
///   resolve, or the memslots changed (dirty logging switched on or off,
///   a slot added or removed), it returns ``StageTwoFaultOutcome/retry(_:)``;
/// - if the page is already mapped by a leaf of that size to that output,
///   the fault was an access-flag or permission fault: it sets the access
///   flag and relaxes (only adds) permissions in place;
/// - else it maps the page or block in one shared walk, which splits a
///   block (break-before-make) or merges tables into the block (the
///   anchored merge with one VMID-wide invalidation); a live leaf that only
///   differs in permissions is refused and the fault retried, so racing
///   vCPUs never downgrade each other.
///
/// Device and non-cacheable memslots (`SLATCore/MemslotFlags/device`,
/// `SLATCore/MemslotFlags/nonCacheable`) are mapped as KVM maps
/// `VM_PFNMAP`/`VM_IO` memory: page by page (never a block, so never merged
/// with cacheable pages), Device-nGnRE or Normal-NC, execute-never (an
/// instruction fetch throws `SLATCore/SLATError/executeFromDeviceMemory(_:)`),
/// with no data-cache clean; a leaf of another memory type at the page is
/// replaced (break-before-make), never relaxed in place.
///
/// Locking contract: `handle` takes the MMU lock shared itself; the caller
/// holds no MMU lock. Many vCPU threads may handle faults at once, each with
/// its own `context` (page cache and reader slot). It never allocates table
/// memory under the lock: the cache is topped up before the lock is taken,
/// and a walk that finds it short (the map stops with
/// `SLATCore/MapOutcome/stopped(_:)`) drops the lock, tops it up and
/// starts again from the staleness checks.
///
/// TLB contract: whatever the change owes is invalidated before `handle`
/// returns (break-before-make and the merge's VMID-wide flush happen
/// during the walk, before the new entry is written).
public struct StageTwoFaultHandler<Memory: TableMemory, T: TLB, Caches: CacheMaintenance, Lock: ReaderWriterLock>: Sendable {
    /// The VM's stage-2 tables.
    public let pageTable: StageTwoPageTable<Memory, T, Caches>
    /// The VM's memslots, host pages and invalidation tracker.
    public let guestMemory: GuestMemory
    /// The VM's MMU lock.
    public let lock: Lock

    /// A handler for the VM whose tables, guest memory and MMU lock these are.
    @inlinable
    public init(pageTable: StageTwoPageTable<Memory, T, Caches>, guestMemory: GuestMemory, lock: Lock) {
        self.pageTable = pageTable
        self.guestMemory = guestMemory
        self.lock = lock
    }

    /// Handles one stage-2 fault of the vCPU owning `context`.
    ///
    /// - Returns: what changed, or why the guest should simply retry.
    /// - Throws: `SLATError/noMemslot(_:)` (MMIO: the VMM emulates),
    ///   `SLATError/readOnlyMemslot(slot:frame:)`,
    ///   `SLATError/hostAddressNotMapped(_:)`,
    ///   `SLATError/hostPageReadOnly(_:)`,
    ///   `SLATError/invalidHostMapping(_:)` when a granule page larger
    ///   than 4 KiB is not backed by one contiguous, aligned host run,
    ///   `SLATError/guestRangeOutOfBounds(_:limit:)` for an IPA past the
    ///   configured size, `SLATError/executeFromDeviceMemory(_:)` for
    ///   an instruction fetch from a device or non-cacheable memslot,
    ///   table-memory and reader-slot errors, `SLATError/tornDown` after
    ///   the tables' ``StageTwoPageTable/destroy()``. Nothing changes when
    ///   it throws.
    @inlinable
    public func handle(_ fault: StageTwoFault, context: PageTableContext) throws(SLATError) -> StageTwoFaultOutcome {
        // First: a bad slot must throw, not trap inside a read section.
        try pageTable.validateReaderSlot(of: context)
        if pageTable.isDestroyed { throw .tornDown }
        let format = pageTable.format
        let limit = format.inputAddressSpaceSize
        guard fault.address.rawValue < limit else {
            throw .guestRangeOutOfBounds(GuestPhysicalRange(start: fault.address, size: 1), limit: limit)
        }
        let write = fault.access == .write
        // Before the resolve: a memslot change (dirty logging switched, slot
        // moved) after it is seen under the lock, as KVM's SRCU guarantees.
        let generation = guestMemory.memslotGeneration
        let resolved = try guestMemory.resolve(frame: fault.address.frame, write: write)
        let memoryType = Self.memoryType(of: resolved.memslot.flags)
        if fault.access == .execute && memoryType != .writeBack {
            throw .executeFromDeviceMemory(resolved.frame)
        }
        let level = memoryType == .writeBack ? mappingLevel(for: resolved) : 0
        let size = format.entrySize(atLevel: level)
        let guestStart = fault.address.alignedDown(to: size)
        let (output, hostWritable) = try backing(
            of: GuestPhysicalRange(start: guestStart, size: size), resolved: resolved, write: write)
        var permissions: Permissions = .read
        if hostWritable && (write || !resolved.dirtyLogging) { permissions.insert(.write) }
        if fault.access == .execute { permissions.formUnion(.execute) }
        let frames = GuestFrameRange(covering: GuestPhysicalRange(start: guestStart, size: size))
        // The most tables one leaf can need.
        var pagesWanted = format.rootLevel
        while true {
            // Outside the lock, always: a cache that runs short under it
            // stops the walk, and the lock is dropped to come back here.
            try context.pageCache.topUp(from: pageTable.table.memory, toAtLeast: pagesWanted)
            let attempt = try lock.withShared { () throws(SLATError) -> StageTwoFaultOutcome? in
                if guestMemory.invalidations.needsRetry(range: frames, since: resolved.sequence) {
                    return .retry(.invalidationInProgress)
                }
                if guestMemory.memslotGeneration != generation { return .retry(.memslotsChanged) }
                let outcome: StageTwoFaultOutcome
                if let current = pageTable.table.translate(fault.address, context: context).translation,
                   current.size == size, current.leafOutput == output, current.attributes.memoryType == memoryType {
                    outcome = try fixInPlace(fault, current: current, permissions: permissions, context: context)
                } else {
                    let result = try pageTable.map(
                        GuestPhysicalRange(start: guestStart, size: size), to: output,
                        attributes: LeafAttributes(permissions: permissions, memoryType: memoryType),
                        maximumLevel: level, mode: .shared,
                        context: context, refusingPermissionOnlyChanges: true, refill: .never)
                    switch result.outcome {
                    case .mapped: outcome = .mapped(level: level)
                    case .refusedPermissionOnlyChange: outcome = .retry(.permissionOnlyChangeRefused)
                    case .stopped(let shortfall):
                        pagesWanted = max(shortfall.pagesWanted, 1)
                        return nil
                    }
                }
                // Still under the lock, so a harvest (exclusive) sees the mark
                // together with the write access it stands for.
                if write && resolved.dirtyLogging && !outcome.isRetry {
                    pageTable.dirtyLogs.bitmap(forMemslot: resolved.memslot.id)?.mark(resolved.frame)
                }
                return outcome
            }
            if let attempt { return attempt }
        }
    }

    /// The stage-2 memory type of a memslot's mappings: Device-nGnRE for a
    /// ``SLATCore/MemslotFlags/device`` slot, Normal-NC for a
    /// ``SLATCore/MemslotFlags/nonCacheable`` one (as KVM maps `VM_PFNMAP`/
    /// `VM_IO` memory, and Normal-NC where the host allows it), else normal
    /// write-back. The MemAttr encodings of both are the same with and
    /// without FWB.
    @inlinable
    static func memoryType(of flags: MemslotFlags) -> MemoryType {
        if flags.contains(.device) { return .device }
        if flags.contains(.nonCacheable) { return .writeCombining }
        return .writeBack
    }

    /// The level to map at: the smallest page while dirty logging, else the
    /// largest block no larger than the host mapping and memslot allow.
    @inlinable
    func mappingLevel(for resolved: ResolvedGuestPage) -> Int {
        if resolved.dirtyLogging { return 0 }
        let format = pageTable.format
        var level = format.rootLevel
        while level > 0 {
            if format.canHoldLeaf(atLevel: level) && format.entrySize(atLevel: level) <= resolved.maximumMappingSize.bytes {
                return level
            }
            level -= 1
        }
        return 0
    }

    /// The host-physical start of the mapping of `range`. Within the host
    /// mapping size it follows from the resolved frame; a granule page
    /// larger than the host mapping (16 and 64 KiB granules over 4 KiB host
    /// pages) must be one aligned, contiguous run of host frames in the
    /// memslot, writable when a write needs it. Also returns whether the
    /// whole mapping may be writable.
    @inlinable
    func backing(
        of range: GuestPhysicalRange, resolved: ResolvedGuestPage, write: Bool
    ) throws(SLATError) -> (HostPhysicalAddress, Bool) {
        let faultPage = resolved.frame.address.rawValue
        if range.size <= resolved.maximumMappingSize.bytes {
            return (HostPhysicalAddress(resolved.hostFrame.address.rawValue &- (faultPage &- range.start.rawValue)),
                    resolved.writable)
        }
        let frames = GuestFrameRange(covering: range)
        let slot = resolved.memslot
        var first: HostFrameNumber?
        var writable = resolved.writable
        var frame = frames.start
        while frame < frames.end {
            guard slot.contains(frame), let address = slot.hostAddress(of: frame) else { throw .noMemslot(frame) }
            guard let page = guestMemory.hostPages.lookup(address) else { throw .hostAddressNotMapped(address) }
            if write && !page.writable { throw .hostPageReadOnly(address) }
            writable = writable && page.writable
            let expected = first.map { HostFrameNumber($0.rawValue &+ (frame.rawValue &- frames.start.rawValue)) }
            if let expected, page.frame != expected { throw .invalidHostMapping(address) }
            if first == nil {
                guard page.frame.address.isAligned(to: range.size) else { throw .invalidHostMapping(address) }
                first = page.frame
            }
            frame = GuestFrameNumber(frame.rawValue &+ 1)
        }
        return (first?.address ?? resolved.hostFrame.address, writable)
    }

    /// An access-flag or permission fault on a leaf that already maps the
    /// page as wanted: set the access flag, add the missing permissions.
    ///
    /// A fault that finds nothing to change was raised by a translation the
    /// faulting CPU still caches: Arm may keep an entry that causes a
    /// permission fault in its TLB, and permissions added without an
    /// invalidation (another vCPU's relax, a map that only adds rights)
    /// leave it there, so the vCPU would fault forever. The faulting IPA is
    /// then invalidated at the leaf's level (KVM commit be097997a273,
    /// "Always invalidate TLB for stage-2 permission faults").
    @inlinable
    func fixInPlace(
        _ fault: StageTwoFault, current: Translation, permissions: Permissions, context: PageTableContext
    ) throws(SLATError) -> StageTwoFaultOutcome {
        var outcome = StageTwoFaultOutcome.spurious
        if !current.attributes.accessed {
            let result = try pageTable.makeYoung(fault.address, mode: .shared, context: context)
            if result.metLockedEntry { return .retry(.lockedEntry) }
            outcome = .madeYoung
        }
        let missing = permissions.subtracting(current.attributes.permissions)
        if !missing.isEmpty {
            // Invalidates the faulting IPA whether or not it changed the leaf.
            let result = try pageTable.relaxPermissions(fault.address, grant: missing, mode: .shared, context: context)
            if result.metLockedEntry { return .retry(.lockedEntry) }
            if result.leavesChanged > 0 { outcome = .permissionsRelaxed }
        } else if outcome == .spurious && !Self.skipsSpuriousFaultInvalidation {
            pageTable.tlb.invalidate(address: fault.address.alignedDown(to: current.size), level: pageTable.format.leafLevel(ofHeight: current.level))
        }
        return outcome
    }

    /// False except under the explorer's
    /// ``ExplorationMutation/spuriousPermissionFaultWithoutInvalidation``
    /// (hosted debug builds only).
    @inlinable
    static var skipsSpuriousFaultInvalidation: Bool {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.isActive(.spuriousPermissionFaultWithoutInvalidation)
        #else
        false
        #endif
    }
}
