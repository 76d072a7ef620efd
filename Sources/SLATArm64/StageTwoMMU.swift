import SLATCore

/// A VM's stage-2 MMU in one object, as SLATCore's `SecondStageMMU`:
/// the tables (``pageTable``), the MMU lock, the fault handler, the
/// mmu-notifier binding (owned, so it lives exactly as long as the VM) and
/// the dirty logs. The same VMM code that drives `ExtendedPageTableMMU`
/// drives this.
///
/// Reader slots: vCPU contexts use `0..<readerSlots`; the MMU keeps two more
/// for its notifier binding and its own maintenance walks.
///
/// Locking contract: every method takes the MMU lock itself (faults shared,
/// zaps and dirty-log passes exclusively); the caller holds no lock and must
/// not take ``lock``. Dirty-log maintenance calls run one at a time. TLB
/// contract: as ``StageTwoPageTable``'s operations — each returns with what
/// it owes invalidated, except aging (owes none, as KVM's clear-young).
public final class StageTwoMMU<Memory: TableMemory, T: TLB, Caches: CacheMaintenance, Lock: ReaderWriterLock>: SecondStageMMU {
    /// The stage-2 tables (``StageTwoPageTable/translationControl`` and
    /// ``StageTwoPageTable/translationTableBase`` are `VTCR_EL2` and `VTTBR_EL2`).
    public let pageTable: StageTwoPageTable<Memory, T, Caches>
    /// The VM's memslots, host page map and notifiers.
    public let guestMemory: GuestMemory
    /// The MMU lock (taken by the MMU's methods; not for the VMM).
    public let lock: Lock
    /// The fault handler (takes ``lock`` shared).
    public let faultHandler: StageTwoFaultHandler<Memory, T, Caches, Lock>
    let binding: StageTwoNotifierBinding<Memory, T, Caches, Lock>
    /// The context of dirty-log passes, used under ``maintenance`` only.
    let maintenanceContext: MaintenanceContext
    /// Serialises the dirty-log calls that use ``maintenanceContext``.
    let maintenance = SpinLock()

    /// Empty tables for VM `vmid` over `memory`, bound to `guestMemory`'s
    /// notifiers.
    ///
    /// - Parameters:
    ///   - format: the stage-2 format.
    ///   - memory: the table memory (its page size is the granule).
    ///   - tlb: the VM's TLB (its VMID on every CPU).
    ///   - caches: the VMM's cache maintenance.
    ///   - vmid: the VM's VMID.
    ///   - vmidSize: the VMID width `VTCR_EL2.VS` configures.
    ///   - guestMemory: the VM's memslots and host page map.
    ///   - lock: the MMU lock, owned by the MMU from now on.
    ///   - readerSlots: vCPU threads that handle faults at once (their
    ///     contexts use slots `0..<readerSlots`).
    /// - Throws: as ``StageTwoPageTable/init(format:memory:tlb:caches:vmid:vmidSize:readerSlots:)``.
    public init(
        format: StageTwoFormat, memory: Memory, tlb: T, caches: Caches, vmid: UInt32, vmidSize: VMIDSize = .bits16,
        guestMemory: GuestMemory, lock: Lock, readerSlots: Int = 62
    ) throws(SLATError) {
        let pageTable = try StageTwoPageTable(format: format, memory: memory, tlb: tlb, caches: caches, vmid: vmid,
                                              vmidSize: vmidSize, readerSlots: readerSlots + 2)
        self.pageTable = pageTable
        self.guestMemory = guestMemory
        self.lock = lock
        self.faultHandler = StageTwoFaultHandler(pageTable: pageTable, guestMemory: guestMemory, lock: lock)
        self.binding = StageTwoNotifierBinding(pageTable: pageTable, guestMemory: guestMemory, lock: lock,
                                               readerSlot: readerSlots + 1)
        self.maintenanceContext = MaintenanceContext(PageTableContext(readerSlot: readerSlots))
    }

    deinit { binding.cancel() }

    /// The stage-2 format.
    @inlinable public var format: StageTwoFormat { pageTable.format }

    /// Handles a stage-2 abort given in the neutral form (decode the
    /// syndrome with ``StageTwoAbortSyndrome``). A user-level fetch is an
    /// execute access; levels in the outcome are the Arm ARM's.
    ///
    /// - Throws: `SLATError.addressSpaceOutOfRange(_:count:)`
    ///   for an address space other than 0, and what
    ///   ``StageTwoFaultHandler/handle(_:context:)`` throws.
    public func handleFault(_ fault: SecondStageFault, vcpu: PageTableContext) throws(SLATError) -> SecondStageFaultOutcome {
        guard fault.addressSpace == 0 else { throw .addressSpaceOutOfRange(fault.addressSpace, count: 1) }
        let access: StageTwoAccess = switch fault.access {
        case .read: .read
        case .write: .write
        case .execute, .userExecute: .execute
        }
        let kind: StageTwoAbortKind? = fault.isPermissionFault ? .permission : nil
        switch try faultHandler.handle(StageTwoFault(address: fault.address, access: access, kind: kind), context: vcpu) {
        case .mapped(let level): return .mapped(level: format.architecturalLevel(level))
        case .permissionsRelaxed: return .permissionsRelaxed
        case .madeYoung: return .madeYoung
        case .spurious: return .spurious
        case .retry(let reason):
            return switch reason {
            case .invalidationInProgress: .retry(.invalidationInProgress)
            case .memslotsChanged: .retry(.memslotsChanged)
            case .lockedEntry: .retry(.lockedEntry)
            case .permissionOnlyChangeRefused: .retry(.permissionOnlyChangeRefused)
            }
        }
    }

    /// The translation of `address`, inside a read section of `context`'s
    /// reader slot; takes no lock.
    ///
    /// - Throws: `SLATError.readerSlotOutOfRange(_:slots:)`, `SLATError.tornDown`.
    public func translate(_ address: GuestPhysicalAddress, context: PageTableContext) throws(SLATError) -> TranslationResult {
        try pageTable.validateReaderSlot(of: context)
        if pageTable.isDestroyed { throw .tornDown }
        return pageTable.table.translate(address, context: context)
    }

    /// The `VTTBR_EL2` value (root and VMID), the same for the VM's life.
    ///
    /// - Throws: `SLATError.readerSlotOutOfRange(_:slots:)`, `SLATError.tornDown`.
    public func loadRoot(_ vcpu: PageTableContext) throws(SLATError) -> UInt64 {
        try pageTable.validateReaderSlot(of: vcpu)
        if pageTable.isDestroyed { throw .tornDown }
        return pageTable.translationTableBase.rawValue
    }

    /// Never: stage 2 keeps one root for the VM's life.
    ///
    /// - Throws: `SLATError.readerSlotOutOfRange(_:slots:)`, `SLATError.tornDown`.
    public func isRootReloadRequested(_ vcpu: PageTableContext) throws(SLATError) -> Bool {
        try pageTable.validateReaderSlot(of: vcpu)
        if pageTable.isDestroyed { throw .tornDown }
        return false
    }

    /// Starts write-protect dirty logging of memslot `memslot` with
    /// `protection`
    /// (``StageTwoPageTable/enableDirtyLogging(memslot:guestMemory:lock:context:protection:)``).
    public func enableDirtyLogging(memslot: UInt32, protection: DirtyLogProtection) throws(SLATError) {
        try maintenance.withLock { () throws(SLATError) in
            try pageTable.enableDirtyLogging(memslot: memslot, guestMemory: guestMemory, lock: lock,
                                             context: maintenanceContext.context, protection: protection)
        }
    }

    /// The memslot's dirty bitmap since the last call, its pages
    /// write-protected again (``StageTwoPageTable/getAndClearDirtyLog(memslot:lock:context:)``).
    public func getAndClearDirtyLog(memslot: UInt32) throws(SLATError) -> [UInt64] {
        try maintenance.withLock { () throws(SLATError) -> [UInt64] in
            try pageTable.getAndClearDirtyLog(memslot: memslot, lock: lock, context: maintenanceContext.context)
        }
    }

    /// The dirty bitmap of a memslot logging with manual protection,
    /// nothing cleared (``StageTwoPageTable/getDirtyLog(memslot:)``).
    public func getDirtyLog(memslot: UInt32) throws(SLATError) -> [UInt64] {
        try pageTable.getDirtyLog(memslot: memslot)
    }

    /// Clears marks of a memslot logging with manual protection and
    /// write-protects the pages they stood for
    /// (``StageTwoPageTable/clearDirtyLog(memslot:firstPage:bitmap:lock:context:)``).
    public func clearDirtyLog(memslot: UInt32, firstPage: UInt64, bitmap: [UInt64]) throws(SLATError) {
        try maintenance.withLock { () throws(SLATError) in
            try pageTable.clearDirtyLog(memslot: memslot, firstPage: firstPage, bitmap: bitmap, lock: lock,
                                        context: maintenanceContext.context)
        }
    }

    /// Stops logging memslot `memslot`; blocks come back through the
    /// anchored merge as faults map them
    /// (``StageTwoPageTable/disableDirtyLogging(memslot:guestMemory:)``).
    public func disableDirtyLogging(memslot: UInt32) throws(SLATError) {
        try maintenance.withLock { () throws(SLATError) in
            try pageTable.disableDirtyLogging(memslot: memslot, guestMemory: guestMemory)
        }
    }

    /// Removes every translation of the guest frames `frames`, widened to
    /// whole leaves (``StageTwoPageTable/zap(_:context:)``, as the notifier
    /// does), and returns the number of leaves removed. Stage 2 has one
    /// address space: `addressSpace` is `nil` or 0.
    ///
    /// Locking contract: takes the MMU lock exclusively; the caller holds
    /// none. TLB contract: what was removed is invalidated before it
    /// returns.
    /// - Throws: `SLATError/addressSpaceOutOfRange(_:count:)`,
    ///   `SLATError/guestRangeOutOfBounds(_:limit:)` for frames beyond the
    ///   IPA size, `SLATError/tornDown`; nothing changed.
    @discardableResult
    public func zap(_ frames: GuestFrameRange, addressSpace: Int? = nil) throws(SLATError) -> Int {
        if let addressSpace, addressSpace != 0 { throw .addressSpaceOutOfRange(addressSpace, count: 1) }
        let limit = format.inputAddressSpaceSize
        let limitFrames = limit >> frameShift
        guard frames.start.rawValue <= limitFrames && frames.count <= limitFrames &- frames.start.rawValue else {
            throw .guestRangeOutOfBounds(frames.physicalRange, limit: limit)
        }
        return try maintenance.withLock { () throws(SLATError) -> Int in
            try lock.withExclusive { () throws(SLATError) -> Int in
                if pageTable.isDestroyed { throw .tornDown }
                guard !frames.isEmpty else { return 0 }
                let removed = pageTable.table.leaves(in: frames.physicalRange).count
                pageTable.zap(frames, context: maintenanceContext.context)
                return removed
            }
        }
    }

    /// Whether a leaf mapping guest frames backed by `range` has its access
    /// flag set. Takes the MMU lock shared; changes nothing.
    ///
    /// - Throws: `SLATError.readerSlotOutOfRange(_:slots:)`, `SLATError.tornDown`.
    public func testYoung(_ range: HostVirtualRange, context: PageTableContext) throws(SLATError) -> Bool {
        try pageTable.validateReaderSlot(of: context)
        return try lock.withShared { () throws(SLATError) -> Bool in
            if pageTable.isDestroyed { throw .tornDown }
            let slot = context.readerSlot
            pageTable.table.reclaimer.enterReadSection(slot: slot)
            defer { pageTable.table.reclaimer.leaveReadSection(slot: slot) }
            for memslot in guestMemory.memslots(overlapping: range) {
                guard let frames = memslot.frames(backedBy: range) else { continue }
                let guest = frames.physicalRange
                guard guest.start.rawValue < format.inputAddressSpaceSize else { continue }
                let clipped = GuestPhysicalRange(start: guest.start,
                                                 uncheckedEnd: GuestPhysicalAddress(min(guest.end.rawValue, format.inputAddressSpaceSize)))
                if pageTable.table.leaves(in: clipped).contains(where: { $0.attributes.accessed }) { return true }
            }
            return false
        }
    }

    /// Clears the access flag of the leaves mapping guest frames backed by
    /// `range` (the next access faults, or hardware sets it again with
    /// `VTCR_EL2.HA`) and says whether any was set. Takes the MMU lock
    /// shared; owes no flush.
    ///
    /// - Throws: `SLATError.readerSlotOutOfRange(_:slots:)`, `SLATError.tornDown`
    ///   (after ``teardown()``, like every method).
    @discardableResult
    public func clearYoung(_ range: HostVirtualRange, context: PageTableContext) throws(SLATError) -> Bool {
        try pageTable.validateReaderSlot(of: context)
        return try lock.withShared { () throws(SLATError) -> Bool in
            // Destroyed tables must not be walked (their pages are freed).
            if pageTable.isDestroyed { throw .tornDown }
            var young = false
            for memslot in guestMemory.memslots(overlapping: range) {
                guard let frames = memslot.frames(backedBy: range) else { continue }
                let guest = frames.physicalRange
                guard guest.start.rawValue < format.inputAddressSpaceSize else { continue }
                let clipped = GuestPhysicalRange(start: guest.start,
                                                 uncheckedEnd: GuestPhysicalAddress(min(guest.end.rawValue, format.inputAddressSpaceSize)))
                if try pageTable.testAndClearYoung(clipped, mode: .shared, context: context) { young = true }
            }
            return young
        }
    }

    /// Destroys the tables under the MMU lock held exclusively and stops
    /// listening to notifiers; idempotent.
    public func teardown() {
        lock.withExclusive { pageTable.destroy() }
        binding.cancel()
    }

    /// Whether ``teardown()`` has run.
    public var isTornDown: Bool { pageTable.isDestroyed }
}

/// The page-table context of a ``StageTwoMMU``'s dirty-log passes.
// @unchecked Sendable: the context is only used by StageTwoMMU's dirty-log
// methods, each of which holds the MMU's `maintenance` spin lock for the
// whole use, so no two threads ever touch it at once.
final class MaintenanceContext: @unchecked Sendable {
    let context: PageTableContext
    init(_ context: PageTableContext) { self.context = context }
}
