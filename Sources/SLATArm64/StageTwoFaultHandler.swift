import SLATCore
import Synchronization

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
/// - a smallest-page fault inside a block breaks the block into an empty
///   table (break-before-make) and installs only its page;
/// - else it maps the page or block in one shared walk, which merges
///   tables into the block (the anchored merge with one VMID-wide
///   invalidation) or replaces a leaf; a live leaf that only differs in
///   permissions is refused and the fault retried, so racing vCPUs never
///   downgrade each other.
///
/// Before all this, a write reported as a permission fault
/// (``StageTwoFault/kind``) on a page write-protected only for dirty
/// logging is fixed without the MMU lock and without the resolve (the fast
/// permission fault, ``StageTwoDescriptorBits/mmuWritable``).
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
    /// Whether `lock` is a `SLATCore/PerSlotReaderWriterLock` built on the
    /// tables' reclaimer slot words, so that one store takes it shared and
    /// enters the read section (`SLATCore/PerSlotReaderWriterLock/lockSharedEnteringReadSection(slot:)`).
    @usableFromInline let combinesLockAndReadSection: Bool

    /// A handler for the VM whose tables, guest memory and MMU lock these are.
    ///
    /// With a `SLATCore/PerSlotReaderWriterLock` made on the tables'
    /// reclaimer words (`PerSlotReaderWriterLock(readerSlotWords:
    /// pageTable.table.reclaimer.readerSlotWords)`) a fault announces its
    /// shared hold and its read section with one store; any other lock is
    /// taken shared and the read section entered after it.
    @inlinable
    public init(pageTable: StageTwoPageTable<Memory, T, Caches>, guestMemory: GuestMemory, lock: Lock) {
        self.pageTable = pageTable
        self.guestMemory = guestMemory
        self.lock = lock
        if let perSlot = lock as? PerSlotReaderWriterLock {
            combinesLockAndReadSection = perSlot.readerSlotWords === pageTable.table.reclaimer.readerSlotWords
        } else {
            combinesLockAndReadSection = false
        }
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
    ///   configured size, `SLATError/outputAddressTooWide(_:outputBits:)`
    ///   for a host frame beyond the configured PA size,
    ///   `SLATError/executeFromDeviceMemory(_:)` for
    ///   an instruction fetch from a device or non-cacheable memslot,
    ///   table-memory and reader-slot errors, `SLATError/tornDown` after
    ///   the tables' ``StageTwoPageTable/destroy()``. Nothing changes when
    ///   it throws.
    @inlinable
    public func handle(_ fault: StageTwoFault, context: PageTableContext) throws(SLATError) -> StageTwoFaultOutcome {
        // A write reported as a permission fault tries the lockless fast
        // path first, in a function of its own: neither path then carries
        // the other's values.
        if fault.access == .write && fault.kind == .permission {
            return try handleWritePermissionFault(fault, context: context)
        }
        try validate(fault, context: context)
        return try resolveAndMapValidated(fault, context: context)
    }

    /// Validation, once: a bad slot must throw, not trap inside a read
    /// section; everything the walks rely on is checked here.
    @inlinable @inline(__always)
    func validate(_ fault: StageTwoFault, context: PageTableContext) throws(SLATError) {
        try pageTable.validateReaderSlot(of: context)
        if pageTable.isDestroyed { throw .tornDown }
        let limit = pageTable.format.inputAddressSpaceSize
        guard fault.address.rawValue < limit else {
            throw .guestRangeOutOfBounds(GuestPhysicalRange(start: fault.address, size: 1), limit: limit)
        }
    }

    /// A write reported as a permission fault: a page write-protected only
    /// for dirty logging is fixed without the MMU lock and without
    /// resolving the host page (``fastPermissionFault(at:slot:)``); any
    /// other takes the resolve and the locked path.
    @inlinable @inline(never)
    func handleWritePermissionFault(_ fault: StageTwoFault, context: PageTableContext) throws(SLATError) -> StageTwoFaultOutcome {
        try validate(fault, context: context)
        if let outcome = fastPermissionFault(at: fault.address, slot: context.readerSlot) { return outcome }
        return try resolveAndMapAfterPermissionFault(fault, context: context)
    }

    /// ``resolveAndMapValidated(_:context:)`` out of line, for a write
    /// permission fault the fast path did not fix, so that the fast path's
    /// caller saves nothing for it.
    @inlinable @inline(never)
    func resolveAndMapAfterPermissionFault(_ fault: StageTwoFault, context: PageTableContext) throws(SLATError) -> StageTwoFaultOutcome {
        try resolveAndMapValidated(fault, context: context)
    }

    /// The fault after validation: the resolve (the vCPU's memo, else the
    /// full one), the mapping size and the walk under the lock.
    @inlinable @inline(__always)
    func resolveAndMapValidated(_ fault: StageTwoFault, context: PageTableContext) throws(SLATError) -> StageTwoFaultOutcome {
        // Before the resolve: a memslot change (dirty logging switched, slot
        // moved) after it is seen under the lock, as KVM's SRCU guarantees.
        let generation = guestMemory.memslotGeneration
        // The common case: the vCPU's resolve memo resolves the frame, to
        // normal write-back memory, mapped by a copy of the fault specialised
        // for it. Anything else out of line.
        if let resolved = memoizedResolution(
               frame: fault.address.frame, write: fault.access == .write, slot: context.readerSlot, generation: generation),
           resolved.memslot.flags.isDisjoint(with: [.device, .nonCacheable]) {
            return try map(fault, resolved: resolved, memoryType: .writeBack, generation: generation, context: context)
        }
        return try resolveAndMap(fault, generation: generation, context: context)
    }

    /// The fault that the vCPU's memo does not resolve to write-back memory:
    /// the full resolve (which refills the memo), then the map; an
    /// instruction fetch from a device or non-cacheable memslot throws.
    @inlinable @inline(never)
    func resolveAndMap(
        _ fault: StageTwoFault, generation: UInt64, context: PageTableContext
    ) throws(SLATError) -> StageTwoFaultOutcome {
        let resolved = try resolveRefillingMemo(
            frame: fault.address.frame, write: fault.access == .write, slot: context.readerSlot, generation: generation)
        let memoryType = Self.memoryType(of: resolved.memslot.flags)
        if fault.access == .execute && memoryType != .writeBack { throw .executeFromDeviceMemory(resolved.frame) }
        return try map(fault, resolved: resolved, memoryType: memoryType, generation: generation, context: context)
    }

    /// The fault after the resolve, for memory of type `memoryType`: the
    /// mapping size and output, then the install
    /// (``install(_:level:output:hostWritable:dirtyLogging:sequence:memslot:memoryType:generation:context:)``).
    /// `generation` is the memslot generation read before the resolve.
    @inlinable @inline(__always)
    func map(
        _ fault: StageTwoFault, resolved: ResolvedGuestPage, memoryType: MemoryType, generation: UInt64,
        context: PageTableContext
    ) throws(SLATError) -> StageTwoFaultOutcome {
        let format = pageTable.format
        let write = fault.access == .write
        // A host mapping smaller than the smallest block (4 KiB host pages)
        // or dirty logging: the smallest page, without the search.
        let level = memoryType != .writeBack || resolved.dirtyLogging
            || resolved.maximumMappingSize.bytes < format.entrySize(atLevel: 1)
            ? 0 : mappingLevel(within: resolved.maximumMappingSize)
        let size = format.entrySize(atLevel: level)
        let guestStart = fault.address.alignedDown(to: size)
        let output: HostPhysicalAddress
        let hostWritable: Bool
        if size <= resolved.maximumMappingSize.bytes {
            // Inside the host mapping: the output follows from the frame.
            output = HostPhysicalAddress(
                resolved.hostFrame.address.rawValue &- (resolved.frame.address.rawValue &- guestStart.rawValue))
            hostWritable = resolved.writable
        } else {
            (output, hostWritable) = try backing(
                of: GuestPhysicalRange(start: guestStart, size: size), memslot: resolved.memslot,
                writable: resolved.writable, write: write)
        }
        let outputLimit = format.outputAddressLimit
        guard output.rawValue < outputLimit, size <= outputLimit &- output.rawValue else {
            throw .outputAddressTooWide(output, outputBits: format.outputAddressBits)
        }
        // The smallest page, the common case, by a copy of the install
        // specialised for it; blocks out of line.
        guard level == 0 else {
            return try installBlock(
                fault, level: level, output: output, hostWritable: hostWritable, dirtyLogging: resolved.dirtyLogging,
                sequence: resolved.sequence, memslot: resolved.memslot.id, generation: generation, context: context)
        }
        return try install(
            fault, level: 0, output: output, hostWritable: hostWritable, dirtyLogging: resolved.dirtyLogging,
            sequence: resolved.sequence, memslot: resolved.memslot.id, memoryType: memoryType, generation: generation,
            context: context)
    }

    /// A block of normal write-back memory at `level` (above 0): see
    /// ``install(_:level:output:hostWritable:dirtyLogging:sequence:memslot:memoryType:generation:context:)``.
    @inlinable @inline(never)
    func installBlock(
        _ fault: StageTwoFault, level: Int, output: HostPhysicalAddress, hostWritable: Bool, dirtyLogging: Bool,
        sequence: InvalidationSequence, memslot: UInt32, generation: UInt64, context: PageTableContext
    ) throws(SLATError) -> StageTwoFaultOutcome {
        try install(
            fault, level: level, output: output, hostWritable: hostWritable, dirtyLogging: dirtyLogging,
            sequence: sequence, memslot: memslot, memoryType: .writeBack, generation: generation, context: context)
    }

    /// The fault's leaf at `level`, mapping `output` with `memoryType`
    /// (`hostWritable`: the host page may be written; `dirtyLogging`: memslot
    /// `memslot` logs dirty pages), resolved under invalidation `sequence`
    /// and memslot `generation`: the permissions, then the walk under the
    /// lock (``handle(_:context:)``).
    @inlinable @inline(__always)
    func install(
        _ fault: StageTwoFault, level: Int, output: HostPhysicalAddress, hostWritable: Bool, dirtyLogging: Bool,
        sequence: InvalidationSequence, memslot: UInt32, memoryType: MemoryType, generation: UInt64,
        context: PageTableContext
    ) throws(SLATError) -> StageTwoFaultOutcome {
        let format = pageTable.format
        let write = fault.access == .write
        let slot = context.readerSlot
        let size = format.entrySize(atLevel: level)
        let guestStart = fault.address.alignedDown(to: size)
        var permissions: Permissions = .read
        if hostWritable && (write || !dirtyLogging) { permissions.insert(.write) }
        if fault.access == .execute { permissions.formUnion(.execute) }
        var attributes = LeafAttributes(permissions: permissions, memoryType: memoryType)
        attributes.accessed = true
        // Not `format.validate(attributes)`: these attributes always encode
        // (rights among read, write and both execute rights, a memory type
        // with a MemAttr value with and without FWB, one software bit).
        // A read while the memslot logs maps a writable host page read-only
        // only for dirty logging: the first write may take the fast path.
        if hostWritable && !permissions.contains(.write) && dirtyLogging && memoryType == .writeBack {
            attributes.softwareBits = StageTwoDescriptorBits.mmuWritableSoftwareBit
        }
        let frames = GuestFrameRange(covering: GuestPhysicalRange(start: guestStart, size: size))
        // The most tables one leaf can need.
        var pagesWanted = format.rootLevel
        while true {
            // Outside the lock, always: a cache that runs short under it
            // stops the walk, and the lock is dropped to come back here.
            if context.cachedPageCount < pagesWanted {
                try context.pageCache.topUp(from: pageTable.table.memory, toAtLeast: pagesWanted)
            }
            lockSharedEnteringReadSection(slot: slot)
            // The staleness checks, then the lean walk; the general path
            // only when it meets a live or locked entry in the way.
            var outcome: StageTwoFaultOutcome?
            var inTheWay = false
            var lostRace = false
            if guestMemory.invalidations.needsRetry(range: frames, since: sequence) {
                outcome = .retry(.invalidationInProgress)
            } else if guestMemory.memslotGeneration != generation {
                outcome = .retry(.memslotsChanged)
            } else {
                switch installLeaf(at: fault.address, level: level, output: output, attributes: attributes, context: context) {
                case .installed: outcome = .mapped(level: level)
                case .leafPresent(let pointer, let entry):
                    // An access-flag or permission fault; a lost race looks again.
                    switch fixLeafInPlace(pointer, entry: entry, at: fault.address, level: level, output: output,
                                          attributes: attributes) {
                    case .fixedInPlace(let fixed): outcome = fixed
                    case .entryInTheWay: inTheWay = true
                    default: lostRace = true
                    }
                case .fixedInPlace(let fixed): outcome = fixed
                case .lostRace: lostRace = true
                case .cacheEmpty: pagesWanted = max(pagesWanted, format.rootLevel)
                case .entryInTheWay: inTheWay = true
                }
            }
            if inTheWay && level > 0 {
                // Not a smallest-page fault: nothing below to break into.
            } else if inTheWay {
                // A block above the page (dirty logging protected it, or the
                // host mapping shrank): broken into a fresh, empty table and
                // the walk taken again, which installs only this page.
                switch breakBlockAbove(fault.address, context: context) {
                case .replaced, .lostRace: inTheWay = false; lostRace = true
                case .cacheEmpty: inTheWay = false; pagesWanted = max(pagesWanted, format.rootLevel)
                case .noBlock: break
                }
            }
            if inTheWay {
                do {
                    outcome = try handleEntryInTheWay(
                        fault, level: level, output: output, attributes: attributes, context: context,
                        pagesWanted: &pagesWanted)
                } catch {
                    unlockSharedLeavingReadSection(slot: slot)
                    throw error
                }
            }
            // Still under the lock, so a harvest (exclusive) sees the mark
            // together with the write access it stands for.
            if let outcome, write && dirtyLogging && !outcome.isRetry {
                markDirty(fault.address.frame, memslot: memslot, slot: slot)
            }
            unlockSharedLeavingReadSection(slot: slot)
            // `nil`: the page cache ran short, or an exchange on a live leaf
            // lost a race; top up and start again.
            if let outcome { return outcome }
            if lostRace { continue }
        }
    }

    /// Takes the MMU lock shared and enters the tables' read section: one
    /// store with a lock built on the reclaimer's slot words.
    @inlinable @inline(__always)
    func lockSharedEnteringReadSection(slot: Int) {
        if combinesLockAndReadSection {
            unsafeDowncast(lock, to: PerSlotReaderWriterLock.self).lockSharedEnteringReadSection(slot: slot)
        } else {
            lock.lockShared()
            pageTable.table.reclaimer.enterReadSection(slot: slot)
        }
    }

    /// Leaves the read section and releases the shared hold.
    @inlinable @inline(__always)
    func unlockSharedLeavingReadSection(slot: Int) {
        if combinesLockAndReadSection {
            unsafeDowncast(lock, to: PerSlotReaderWriterLock.self).unlockSharedLeavingReadSection(slot: slot)
        } else {
            pageTable.table.reclaimer.leaveReadSection(slot: slot)
            lock.unlockShared()
        }
    }

    /// An access-flag or permission fault in the lean walk, on the live leaf
    /// `entry` at `level` that `pointer` holds: when it maps `output` with
    /// the wanted memory type, one compare-and-exchange sets the access flag
    /// and adds the missing permissions (only adds: a racing vCPU's rights
    /// are never reduced). A grant of execute invalidates the instruction
    /// cache for the output first (unless it is coherent); added permissions
    /// invalidate the faulting IPA at the leaf's level, as does a fault that
    /// finds nothing to change (KVM commit be097997a273: Arm may keep the
    /// entry that faulted in its TLB, and rights added without an
    /// invalidation leave it there). An access flag set alone owes nothing:
    /// an entry without it is never cached. Returns
    /// ``StageTwoLeafInstall/lostRace`` when the exchange lost a race (the
    /// fault starts again), and ``StageTwoLeafInstall/entryInTheWay`` for a
    /// leaf of another output or memory type (the general path replaces it).
    @inlinable @inline(never)
    func fixLeafInPlace(
        _ pointer: EntryPointer, entry: UInt64, at address: GuestPhysicalAddress, level: Int,
        output: HostPhysicalAddress, attributes: LeafAttributes
    ) -> StageTwoLeafInstall {
        let format = pageTable.format
        let old = entry
        // Same output and MemAttr as the leaf the fault wants: compared in
        // the descriptors, without decoding them.
        let wanted = format.leafEntry(output: output, attributes: attributes, atLevel: level)
        let identity = format.tableAddressMask | format.highAddressMask | StageTwoDescriptorBits.memoryAttributes
        guard (old ^ wanted) & identity == 0 else { return .entryInTheWay }
        let missing = attributes.permissions.subtracting(format.permissions(ofLeaf: old))
        var new = old | StageTwoDescriptorBits.accessFlag
        if !missing.isEmpty { new = format.changingPermissions(ofLeaf: new, grant: missing, revoke: []) }
        let blockAddress = address.alignedDown(to: format.entrySize(atLevel: level))
        if new == old {
            // Nothing to change: raised by a translation this CPU caches.
            if !Self.skipsSpuriousFaultInvalidation {
                pageTable.tlb.invalidate(address: blockAddress, level: format.leafLevel(ofHeight: level))
            }
            return .fixedInPlace(.spurious)
        }
        if !missing.intersection(.execute).isEmpty && !pageTable.caches.instructionCacheIsCoherent {
            pageTable.caches.invalidateInstructionCache(output, size: format.entrySize(atLevel: level))
        }
        let (exchanged, _) = pointer.pointee.compareExchange(
            expected: old, desired: new, ordering: .acquiringAndReleasing)
        guard exchanged else { return .lostRace }
        if missing.isEmpty { return .fixedInPlace(.madeYoung) }
        pageTable.tlb.invalidate(address: blockAddress, level: format.leafLevel(ofHeight: level))
        return .fixedInPlace((new ^ old) & ~StageTwoDescriptorBits.accessFlag != 0 ? .permissionsRelaxed : .spurious)
    }

    /// The fast permission fault (KVM x86's `fast_page_fault` for stage 2):
    /// a write to a smallest page whose write access was removed only for
    /// dirty logging (``StageTwoDescriptorBits/mmuWritable`` set, write
    /// clear) is made writable **without the MMU lock** and without
    /// resolving the host page: inside the reclaimer's read section, the
    /// leaf found from the vCPU's leaf-table memo, one compare-and-exchange
    /// that adds write access and the access flag, then the page marked in
    /// its memslot's dirty bitmap through the vCPU's dirty-log memo; after
    /// the read section (neither step reads a table), the faulting IPA
    /// invalidated by address at the page's level, as for every permission
    /// fault. A leaf that already allows the write is a spurious fault: the
    /// same invalidation, `.spurious`. Anything else — no leaf, a block, a
    /// table, a locked entry, a leaf without the bit, a memslot that no
    /// longer logs, an exchange lost more than a few times — returns `nil`
    /// for the locked path.
    ///
    /// The memo path calls nothing inside its read section, so it keeps
    /// its values in registers: when either memo misses it changes
    /// nothing, leaves, and ``fastPermissionFaultWalking(at:slot:)`` does
    /// it all again in a read section of its own, walking from the root
    /// and looking the log up (which refill the memos).
    ///
    /// Why it is sound on Arm (Docs/stage2-mmu.md, "The fast permission
    /// fault"): descriptor loads and exchanges are single-copy atomic
    /// 64-bit accesses (Arm ARM B2.2.1), so the exchange succeeds only
    /// against the very value read, and fails against any change a lock
    /// holder made meanwhile (every exclusive writer exchanges these
    /// volatile leaves, rule 5 of Docs/concurrency.md); the bit is set only
    /// by the dirty-log protection and cleared by every other removal of
    /// write access, so the host page behind the leaf is still the one
    /// resolved, writable, when it was installed (a host change zaps the
    /// leaf); the read section keeps the table page from being freed under
    /// the walk, and the leaf-table memo is used only while no table was
    /// unlinked; the log is looked up after the leaf was read and looked up
    /// again if its generation moved after the exchange (that second mark
    /// after the read section), and the marks follow the exchange, so a
    /// harvest that takes a mark also sees the write access it must take
    /// away again.
    @inlinable
    func fastPermissionFault(at address: GuestPhysicalAddress, slot: Int) -> StageTwoFaultOutcome? {
        let step = fastPermissionFaultStep(at: address, slot: slot, walks: false)
        if step == .walk { return fastPermissionFaultWalking(at: address, slot: slot) }
        return fastPermissionFaultFinish(step, at: address)
    }

    /// ``fastPermissionFault(at:slot:)`` when a memo missed: the same
    /// steps from the start, walking from the root and looking the dirty
    /// log up where a memo does not hold (and refilling it). Out of line,
    /// so that the memo path calls nothing inside its read section.
    @inlinable @inline(never)
    func fastPermissionFaultWalking(at address: GuestPhysicalAddress, slot: Int) -> StageTwoFaultOutcome? {
        fastPermissionFaultFinish(fastPermissionFaultStep(at: address, slot: slot, walks: true), at: address)
    }

    /// What the fast permission fault did inside its read section.
    @frozen @usableFromInline
    enum FastPermissionFaultStep: Equatable {
        /// Nothing: the locked path decides.
        case locked
        /// A memo missed and the step may not walk or look up: nothing
        /// changed, the walking step decides.
        case walk
        /// The leaf already allowed the write.
        case spurious
        /// Write access given back and the page marked in the log looked up.
        case relaxed
        /// As `relaxed`, but the log generation moved after the lookup:
        /// the frame is owed a mark in the log covering it now.
        case relaxedLogMoved
    }

    /// The fast permission fault's read section: the walk, the exchange
    /// and the mark (`walks`: whether a memo miss walks from the root and
    /// looks the log up, else it returns ``FastPermissionFaultStep/walk``).
    @inlinable @inline(__always)
    func fastPermissionFaultStep(at address: GuestPhysicalAddress, slot: Int, walks: Bool) -> FastPermissionFaultStep {
        let reclaimer = pageTable.table.reclaimer
        reclaimer.enterReadSection(slot: slot)
        defer { reclaimer.leaveReadSection(slot: slot) }
        let memo = pageTable.faultMemos.entry(slot: slot)
        let pointer: EntryPointer
        if let remembered = fastFaultLeaf(address, memo: memo) {
            pointer = remembered
        } else {
            guard walks else { return .walk }
            guard let walked = Self.fastFaultLeafFromRoot(address, slot: slot, pageTable: pageTable) else { return .locked }
            pointer = walked
        }
        let write = StageTwoDescriptorBits.write
        let mmuWritable = StageTwoDescriptorBits.mmuWritable
        let accessFlag = StageTwoDescriptorBits.accessFlag
        // A page descriptor: bits 1:0 = 0b11 at the last level (Arm ARM
        // D8.3.1); the locked marker and a reserved 0b01 are not one.
        let page = StageTwoDescriptorBits.valid | StageTwoDescriptorBits.tableOrPage
        var entry = pointer.pointee.load(ordering: .acquiring)
        var attempts = 4
        while attempts > 0 {
            guard entry & page == page else { return .locked }
            if entry & write != 0 {
                // Another vCPU gave the write back: a translation this CPU
                // still caches raised the fault.
                return entry & accessFlag != 0 ? .spurious : .locked
            }
            guard entry & mmuWritable != 0 || Self.fastFaultIgnoresMMUWritable else { return .locked }
            // After the leaf was read: the log the protection that set the
            // bit started is registered before it (its generation bump).
            let frame = address.frame
            let generation = pageTable.dirtyLogs.generation.load(ordering: .sequentiallyConsistent)
            let log: (words: UnsafeMutablePointer<Atomic<UInt64>>, offset: UInt64)
            if let remembered = fastDirtyLog(frame, generation: generation, memo: memo) {
                log = remembered
            } else {
                guard walks else { return .walk }
                guard let found = fastDirtyLogLookup(frame, slot: slot, generation: generation) else { return .locked }
                log = found
            }
            let new = entry | write | accessFlag
            _explorationTableEntry()
            if Self.fastFaultStoresPlainly {
                pointer.pointee.store(new, ordering: .releasing)
            } else {
                let (exchanged, original) = pointer.pointee.compareExchange(
                    expected: entry, desired: new, ordering: .sequentiallyConsistent)
                if !exchanged {
                    entry = original
                    attempts -= 1
                    continue
                }
            }
            // After the exchange, with release: a harvest whose take sees the
            // mark sees the write access too.
            let bit: UInt64 = 1 &<< (log.offset & 63)
            (log.words + Int(truncatingIfNeeded: log.offset >> 6)).pointee.bitwiseOr(bit, ordering: .releasing)
            // A log stopped and started again since the lookup (the leaf
            // protected anew by the same value) is owed the mark too.
            let moved = pageTable.dirtyLogs.generation.load(ordering: .sequentiallyConsistent) != generation
            return moved ? .relaxedLogMoved : .relaxed
        }
        return .locked
    }

    /// The fast permission fault after its read section (the
    /// invalidation and a moved log's mark read no table): the outcome,
    /// `nil` for the locked path.
    @inlinable @inline(__always)
    func fastPermissionFaultFinish(_ step: FastPermissionFaultStep, at address: GuestPhysicalAddress) -> StageTwoFaultOutcome? {
        switch step {
        case .locked, .walk:
            return nil
        case .spurious:
            if !Self.skipsSpuriousFaultInvalidation { fastFaultInvalidate(address) }
            return .spurious
        case .relaxed:
            fastFaultInvalidate(address)
            return .permissionsRelaxed
        case .relaxedLogMoved:
            fastFaultMarkCurrentLog(address.frame)
            fastFaultInvalidate(address)
            return .permissionsRelaxed
        }
    }

    /// The fast permission fault's invalidation: the page holding
    /// `address`, by address at the smallest page's level.
    @inlinable @inline(__always)
    func fastFaultInvalidate(_ address: GuestPhysicalAddress) {
        let format = pageTable.format
        // Masking shift: the granule shift is below 64.
        let page = address.rawValue & ~((1 &<< UInt64(truncatingIfNeeded: format.granuleShift)) &- 1)
        pageTable.tlb.invalidate(address: GuestPhysicalAddress(page), level: format.leafLevel(ofHeight: 0))
    }

    /// Marks `frame` in the dirty log that covers it now, if any: the fast
    /// permission fault's mark when the log generation moved after its
    /// lookup. Out of line: it runs only when a log started or stopped
    /// during the fault.
    @inlinable @inline(never)
    func fastFaultMarkCurrentLog(_ frame: GuestFrameNumber) {
        guard let current = pageTable.dirtyLogs.log(containing: frame) else { return }
        let offset = frame.rawValue &- current.bitmap.frames.start.rawValue
        (current.bitmap.words + Int(truncatingIfNeeded: offset >> 6)).pointee
            .bitwiseOr(1 &<< (offset & 63), ordering: .releasing)
    }

    /// The smallest-page entry mapping `address` for the fast permission
    /// fault from the vCPU's remembered page table (`memo`), or `nil` when
    /// the memo does not hold: it is used only while still valid (as
    /// ``installLeaf(at:level:output:attributes:context:)``: the
    /// reclaimer's `tableUnlinks` unchanged, loaded inside the read
    /// section, and the remembered parent entry still linking it).
    @inlinable @inline(__always)
    func fastFaultLeaf(_ address: GuestPhysicalAddress, memo: UnsafeMutablePointer<StageTwoResolveMemo>) -> EntryPointer? {
        let unlinks = pageTable.table.reclaimer.tableUnlinks.load(ordering: .sequentiallyConsistent)
        let format = pageTable.format
        let table = memo.pointee.leafTable
        let region = memo.pointee.leafRegion
        guard table != 0 && memo.pointee.leafUnlinks == unlinks
            && region == address.rawValue &>> UInt64(truncatingIfNeeded: format.shift(atLevel: 1)),
            let parent = memo.pointee.leafParent,
            parent.pointee.load(ordering: .acquiring) == format.tableEntry(child: HostPhysicalAddress(table)) else { return nil }
        // The page's index in the table: its page number less the region's
        // first (a remembered table is never the root, so it holds a full
        // table's entries).
        let index = address.rawValue &>> UInt64(truncatingIfNeeded: format.granuleShift)
            &- region &<< UInt64(truncatingIfNeeded: format.bitsPerLevel)
        return pageTable.table.memory.entries(at: HostPhysicalAddress(table)) + Int(truncatingIfNeeded: index)
    }

    /// The smallest-page entry mapping `address` for the fast permission
    /// fault by a walk from the root of `pageTable`, or `nil` when the walk
    /// meets anything but tables above it; the walk remembers the page
    /// table it reaches in reader slot `slot`'s memo, with the reclaimer's
    /// `tableUnlinks` loaded inside the read section before the walk.
    @inlinable
    static func fastFaultLeafFromRoot(
        _ address: GuestPhysicalAddress, slot: Int, pageTable: StageTwoPageTable<Memory, T, Caches>
    ) -> EntryPointer? {
        let unlinks = pageTable.table.reclaimer.tableUnlinks.load(ordering: .sequentiallyConsistent)
        let format = pageTable.format
        let memory = pageTable.table.memory
        let region = address.rawValue &>> UInt64(truncatingIfNeeded: format.shift(atLevel: 1))
        var level = format.rootLevel
        var pointer = memory.entries(at: pageTable.table.root) + format.index(of: address, atLevel: level)
        while level > 0 {
            let entry = pointer.pointee.load(ordering: .acquiring)
            guard entry != format.frozenEntry, format.isPresent(entry, atLevel: level),
                  format.isTable(entry, atLevel: level) else { return nil }
            let child = format.childTable(of: entry)
            level -= 1
            if level == 0 {
                pageTable.faultMemos.entry(slot: slot).pointee
                    .rememberLeafTable(child, parent: pointer, region: region, unlinks: unlinks)
            }
            pointer = memory.entries(at: child) + format.index(of: address, atLevel: level)
        }
        return pointer
    }

    /// The dirty bitmap covering `frame` for the fast permission fault,
    /// through the vCPU's dirty-log memo (`memo`) while the tables'
    /// dirty-log generation is `generation`, the one it was filled under;
    /// `nil` when the memo does not hold.
    @inlinable @inline(__always)
    func fastDirtyLog(
        _ frame: GuestFrameNumber, generation: UInt64, memo: UnsafeMutablePointer<StageTwoResolveMemo>
    ) -> (words: UnsafeMutablePointer<Atomic<UInt64>>, offset: UInt64)? {
        guard memo.pointee.dirtyLogGeneration == generation, let words = memo.pointee.dirtyLogWords else { return nil }
        let offset = frame.rawValue &- memo.pointee.dirtyLogFirstFrame
        return offset < memo.pointee.dirtyLogFrameCount ? (words, offset) : nil
    }

    /// The dirty bitmap covering `frame` for the fast permission fault by a
    /// lookup under the logs' lock, which refills reader slot `slot`'s memo
    /// (`generation` loaded before it); `nil` when no memslot logs `frame`.
    @inlinable
    func fastDirtyLogLookup(
        _ frame: GuestFrameNumber, slot: Int, generation: UInt64
    ) -> (words: UnsafeMutablePointer<Atomic<UInt64>>, offset: UInt64)? {
        guard let (memslot, bitmap) = pageTable.dirtyLogs.log(containing: frame) else { return nil }
        _ = refillDirtyLogMemo(pageTable.faultMemos.entry(slot: slot), slot: slot, memslot: memslot, generation: generation)
        return (bitmap.words, frame.rawValue &- bitmap.frames.start.rawValue)
    }

    /// False except under the explorer's
    /// ``ExplorationMutation/fastPermissionFaultIgnoresMMUWritable``.
    @inlinable
    static var fastFaultIgnoresMMUWritable: Bool {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.isActive(.fastPermissionFaultIgnoresMMUWritable)
        #else
        false
        #endif
    }

    /// False except under the explorer's
    /// ``ExplorationMutation/fastPermissionFaultPlainStore``.
    @inlinable
    static var fastFaultStoresPlainly: Bool {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.isActive(.fastPermissionFaultPlainStore)
        #else
        false
        #endif
    }

    /// What ``breakBlockAbove(_:context:)`` did.
    @frozen @usableFromInline
    enum BlockBreak {
        /// A block above the page was replaced by an empty table.
        case replaced
        /// No block is in the way (a table, a locked entry, a leaf at the
        /// page's level): the general path decides.
        case noBlock
        /// The block changed under the exchange: the fault starts again.
        case lostRace
        /// No page in the cache for the table.
        case cacheEmpty
    }

    /// A smallest-page fault inside a block (KVM/arm64's stage-2 map of a
    /// page into a block): the block is broken — exchanged for the locked
    /// marker, its translation invalidated by address at the block's
    /// level, then replaced by an **empty** table from `context`'s cache
    /// (break-before-make, rule 4 of Docs/concurrency.md) — and the fault's
    /// lean walk then installs only its own page there. The block's other
    /// pages are mapped by the faults that touch them, each resolved afresh.
    /// Under dirty logging a write to a protected block so costs one fault
    /// for its page and leaves the rest of the block unmapped, instead of a
    /// full table of write-protected pages each taking a permission fault.
    ///
    /// Lock held shared, inside the read section. Nothing of the block is
    /// lost to the dirty log: a block that logs is write-protected, so no
    /// write went through it since it was protected.
    @inlinable @inline(never)
    func breakBlockAbove(_ address: GuestPhysicalAddress, context: PageTableContext) -> BlockBreak {
        let format = pageTable.format
        let memory = pageTable.table.memory
        var level = format.rootLevel
        var entries = memory.entries(at: pageTable.table.root)
        while level > 0 {
            let pointer = entries + format.index(of: address, atLevel: level)
            let entry = pointer.pointee.load(ordering: .acquiring)
            if entry == format.frozenEntry || !format.isPresent(entry, atLevel: level) { return .noBlock }
            if format.isTable(entry, atLevel: level) {
                entries = memory.entries(at: format.childTable(of: entry))
                level -= 1
                continue
            }
            guard let page = context.pageCache.take() else { return .cacheEmpty }
            _explorationTableEntry()
            let (exchanged, _) = pointer.pointee.compareExchange(
                expected: entry, desired: format.frozenEntry, ordering: .acquiringAndReleasing)
            guard exchanged else {
                context.pageCache.giveBack(page)
                return .lostRace
            }
            let size = format.entrySize(atLevel: level)
            pageTable.tlb.invalidate(address: address.alignedDown(to: size), level: format.leafLevel(ofHeight: level))
            _explorationTableEntry()
            // Block and table are both live: the parent's count is unchanged.
            pointer.pointee.store(format.tableEntry(child: page), ordering: .releasing)
            return .replaced
        }
        return .noBlock
    }

    /// The general path, when the lean walk met a live or locked entry:
    /// `translate`, then set the access flag or relax permissions in place
    /// (``fixInPlace(_:current:permissions:context:)``) when the leaf maps
    /// the page as wanted, else `map` (split, merge, replacement, or a
    /// refused permission-only change). `nil`: the page cache ran short.
    /// Out of line: the common fault never comes here.
    @inlinable @inline(never)
    func handleEntryInTheWay(
        _ fault: StageTwoFault, level: Int, output: HostPhysicalAddress, attributes: LeafAttributes,
        context: PageTableContext, pagesWanted: inout Int
    ) throws(SLATError) -> StageTwoFaultOutcome? {
        let format = pageTable.format
        let size = format.entrySize(atLevel: level)
        let guestStart = fault.address.alignedDown(to: size)
        if let current = pageTable.table.translate(fault.address, context: context).translation,
           current.size == size, current.leafOutput == output, current.attributes.memoryType == attributes.memoryType {
            return try fixInPlace(fault, current: current, permissions: attributes.permissions, context: context)
        }
        // `map` takes no MMU-owned bit: a leaf it installs read-only for
        // dirty logging takes the locked path at its first write.
        var mapped = attributes
        mapped.softwareBits &= ~StageTwoDescriptorBits.mmuWritableSoftwareBit
        let result = try pageTable.map(
            GuestPhysicalRange(start: guestStart, size: size), to: output,
            attributes: mapped, maximumLevel: level, mode: .shared,
            context: context, refusingPermissionOnlyChanges: true, refill: .never)
        switch result.outcome {
        case .mapped: return .mapped(level: level)
        case .refusedPermissionOnlyChange: return .retry(.permissionOnlyChangeRefused)
        case .stopped(let shortfall):
            pagesWanted = max(shortfall.pagesWanted, 1)
            return nil
        }
    }

    /// The common fault in one purpose-built walk: from the root, link a
    /// missing table from `context`'s page cache by compare-and-exchange,
    /// descend through tables, and install the leaf into an invalid entry
    /// at `level` by compare-and-exchange (the leaf's data-cache clean is
    /// done just before, once, only when it is installed). Anything else in
    /// the way — a live leaf or block, a table where the leaf goes, a locked
    /// entry — is left as it is for the general path. Lock held shared,
    /// inside the read section.
    ///
    /// Soundness is that of the shared map (Docs/concurrency.md rules 1–2):
    /// every change is one exchange from the value read; a table linked here
    /// is empty until the leaf lands in it, and a shared unmap that frees
    /// it as empty first locks each of its entries, so the leaf's exchange
    /// then fails on the locked entry and the general path restarts from
    /// the root; the reclaimer read section keeps such a page from being
    /// reused under the walk. Only invalid entries are replaced, so nothing
    /// is owed to the TLB (Arm caches no invalid entry).
    // Transparent, not `@inline(__always)`: once the permission path joined
    // the fault the optimiser kept this walk out of line with the latter,
    // which cost about 70 instructions per fault in argument passing.
    @usableFromInline @_transparent
    func installLeaf(
        at address: GuestPhysicalAddress, level target: Int, output: HostPhysicalAddress,
        attributes: LeafAttributes, context: PageTableContext
    ) -> StageTwoLeafInstall {
        let format = pageTable.format
        let memory = pageTable.table.memory
        let frozen = format.frozenEntry
        var level = format.rootLevel
        var entries: EntryPointer
        // The vCPU's remembered smallest-page table (StageTwoResolveMemo):
        // read inside the read section, as its soundness needs.
        let memo = pageTable.faultMemos.entry(slot: context.readerSlot)
        let unlinks = pageTable.table.reclaimer.tableUnlinks.load(ordering: .sequentiallyConsistent)
        let region = address.rawValue &>> UInt64(truncatingIfNeeded: format.shift(atLevel: 1))
        if target == 0 && memo.pointee.leafTable != 0 && memo.pointee.leafUnlinks == unlinks
            && memo.pointee.leafRegion == region, let parent = memo.pointee.leafParent,
            parent.pointee.load(ordering: .acquiring) == format.tableEntry(child: HostPhysicalAddress(memo.pointee.leafTable)) {
            level = 0
            entries = memory.entries(at: HostPhysicalAddress(memo.pointee.leafTable))
        } else {
            entries = memory.entries(at: pageTable.table.root)
        }
        while true {
            let pointer = entries + format.index(of: address, atLevel: level)
            var entry = pointer.pointee.load(ordering: .acquiring)
            descend: while true {
                if entry == frozen { return .entryInTheWay }
                let present = format.isPresent(entry, atLevel: level)
                if level == target {
                    if present {
                        if level > 0 && format.isTable(entry, atLevel: level) { return .entryInTheWay }
                        return .leafPresent(pointer, entry)
                    }
                    let leaf = format.leafEntry(output: output, attributes: attributes, atLevel: level)
                    pageTable.caches.prepare(output, size: format.entrySize(atLevel: level), attributes: attributes)
                    let (exchanged, original) = pointer.pointee.compareExchange(
                        expected: entry, desired: leaf, ordering: .acquiringAndReleasing)
                    if exchanged {
                        _ = memory.adjustLiveEntryCount(containing: pointer, by: 1)
                        return .installed
                    }
                    entry = original
                    continue descend
                }
                if present {
                    // A block above the leaf's level: break-before-make split.
                    guard format.isTable(entry, atLevel: level) else { return .entryInTheWay }
                    let child = format.childTable(of: entry)
                    do {
                        // One level down; a smallest-page table is remembered
                        // for the vCPU's next fault in the region.
                        entries = memory.entries(at: child)
                        level -= 1
                        if level == 0 {
                            memo.pointee.rememberLeafTable(child, parent: pointer, region: region, unlinks: unlinks)
                        }
                    }
                    break descend
                }
                guard let page = context.pageCache.take() else { return .cacheEmpty }
                let (exchanged, original) = pointer.pointee.compareExchange(
                    expected: entry, desired: format.tableEntry(child: page), ordering: .acquiringAndReleasing)
                if exchanged {
                    _ = memory.adjustLiveEntryCount(containing: pointer, by: 1)
                    do {
                        // One level down; a smallest-page table is remembered
                        // for the vCPU's next fault in the region.
                        entries = memory.entries(at: page)
                        level -= 1
                        if level == 0 {
                            memo.pointee.rememberLeafTable(page, parent: pointer, region: region, unlinks: unlinks)
                        }
                    }
                    break descend
                }
                context.pageCache.giveBack(page)
                entry = original
            }
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

    /// The level to map at outside dirty logging: the largest block no
    /// larger than `maximumMappingSize` (what the host mapping and the
    /// memslot's alignment allow), else the smallest page.
    @inlinable
    func mappingLevel(within maximumMappingSize: HostMappingSize) -> Int {
        let format = pageTable.format
        var level = format.rootLevel
        while level > 0 {
            if format.canHoldLeaf(atLevel: level) && format.entrySize(atLevel: level) <= maximumMappingSize.bytes {
                return level
            }
            level -= 1
        }
        return 0
    }

    /// The host-physical start of the mapping of `range`, a granule page
    /// larger than the host mapping (16 and 64 KiB granules over 4 KiB host
    /// pages): one aligned, contiguous run of host frames in `memslot`,
    /// writable when a write needs it. Also returns whether the whole
    /// mapping may be writable (`writable`: whether the faulting page is).
    @inlinable
    func backing(
        of range: GuestPhysicalRange, memslot slot: Memslot, writable resolvedWritable: Bool, write: Bool
    ) throws(SLATError) -> (HostPhysicalAddress, Bool) {
        let frames = GuestFrameRange(covering: range)
        var first: HostFrameNumber?
        var writable = resolvedWritable
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
        // The range spans several host pages: the loop set `first`.
        return (first?.address ?? HostPhysicalAddress(0), writable)
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

/// What the lean walk of ``StageTwoFaultHandler/installLeaf(at:level:output:attributes:context:)`` did.
@frozen @usableFromInline
enum StageTwoLeafInstall {
    /// The leaf is in place.
    case installed
    /// A live leaf at the wanted level (`pointer`, `entry`): an access-flag
    /// or permission fault for ``StageTwoFaultHandler/fixLeafInPlace(_:entry:at:level:output:attributes:)``.
    case leafPresent(EntryPointer, UInt64)
    /// The leaf already mapped the page as wanted: an access-flag or
    /// permission fault fixed in place, or a spurious one invalidated.
    case fixedInPlace(StageTwoFaultOutcome)
    /// The exchange on a live leaf lost a race: the fault starts again.
    case lostRace
    /// The page cache ran out for a missing table; nothing changed since
    /// the last table linked (an empty table is harmless).
    case cacheEmpty
    /// A live or locked entry is in the way: the general path decides.
    case entryInTheWay
}
