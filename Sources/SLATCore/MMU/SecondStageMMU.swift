/// A VM's second-level MMU, whichever the architecture: what a VMM calls,
/// written once for both backends (`ExtendedPageTableMMU` for Intel EPT,
/// `StageTwoMMU` for Arm stage 2).
///
/// A conforming type owns the VM's MMU lock, its mmu-notifier listener, its
/// dirty logs and its roots; the VMM owns nothing but the per-vCPU
/// ``PageTableContext``s (one per vCPU thread, each with its own reader
/// slot).
///
/// Locking contract: every method takes the locks it needs; the caller
/// holds none. Faults of many vCPUs run at once. TLB contract: every method
/// returns with the invalidations it owes completed (except where a method
/// says otherwise: aging owes none, as in KVM). After ``teardown()`` every
/// method throws ``SLATError/tornDown``.
public protocol SecondStageMMU: AnyObject, Sendable {
    /// The translation format.
    associatedtype Format: PageTableFormat
    /// The tables' format.
    var format: Format { get }
    /// The VM's memslots, host page map and notifiers.
    var guestMemory: GuestMemory { get }

    /// Handles a fault of the vCPU whose context is `vcpu`.
    ///
    /// - Throws: ``SLATError/noMemslot(_:)`` (emulate the access as MMIO),
    ///   ``SLATError/readOnlyMemslot(slot:frame:)`` (emulate the write),
    ///   ``SLATError/guestAddressOutOfRange(_:limit:)`` or
    ///   ``SLATError/guestRangeOutOfBounds(_:limit:)`` beyond the input
    ///   address size, ``SLATError/addressSpaceOutOfRange(_:count:)``,
    ///   ``SLATError/readerSlotOutOfRange(_:slots:)``, table-memory errors,
    ///   ``SLATError/tornDown``. Nothing changes when it throws.
    func handleFault(_ fault: SecondStageFault, vcpu: PageTableContext) throws(SLATError) -> SecondStageFaultOutcome

    /// How the tables translate `address` now (address space 0), walked
    /// inside a read section of `context`'s reader slot; takes no lock.
    func translate(_ address: GuestPhysicalAddress, context: PageTableContext) throws(SLATError) -> TranslationResult

    /// The translation-root register value the vCPU loads before entering
    /// the guest — the EPTP, or `VTTBR_EL2` — recording that it now uses the
    /// current root. Call it before the first entry and whenever
    /// ``isRootReloadRequested(_:)`` says so.
    func loadRoot(_ vcpu: PageTableContext) throws(SLATError) -> UInt64

    /// Whether the vCPU must reload its root (``loadRoot(_:)``) before the
    /// next VM entry because the roots were replaced. Stage 2 never
    /// replaces its root.
    func isRootReloadRequested(_ vcpu: PageTableContext) throws(SLATError) -> Bool

    /// Starts logging the writes to memslot `memslot` (write protection, or
    /// dirty bits where the backend is configured for them); every write
    /// after this returns appears in a later harvest. `protection` says who
    /// re-protects what the log reports (``DirtyLogProtection``): the
    /// harvest (``getAndClearDirtyLog(memslot:)``), or the VMM
    /// (``getDirtyLog(memslot:)`` then ``clearDirtyLog(memslot:firstPage:bitmap:)``).
    /// Enabling a memslot that already logs changes nothing.
    ///
    /// Locking contract: takes the MMU lock exclusively; the caller holds
    /// none. TLB contract: every page that lost write access (or a set dirty
    /// bit) is invalidated before it returns.
    /// - Throws: `SLATError/unknownMemslot(slot:)`, `SLATError/tornDown`,
    ///   and the backend's configuration errors.
    func enableDirtyLogging(memslot: UInt32, protection: DirtyLogProtection) throws(SLATError)

    /// The dirty bitmap of memslot `memslot` since the last call (bit *n* of
    /// word *w* is frame `64·w + n` of the slot), cleared and re-protected
    /// before it returns.
    ///
    /// - Throws: `SLATError/dirtyLoggingNotEnabled(slot:)`;
    ///   `SLATError/dirtyLogClearedManually(slot:)` for a log enabled with
    ///   manual protection.
    func getAndClearDirtyLog(memslot: UInt32) throws(SLATError) -> [UInt64]

    /// The dirty bitmap of memslot `memslot`, a log with manual protection
    /// (`KVM_GET_DIRTY_LOG` with `KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE`):
    /// every page written since its last clear, cleared and re-protected by
    /// nothing. Bit *n* of word *w* is frame `64·w + n` of the slot. Where
    /// the backend logs with dirty bits, they are first collected into the
    /// bitmap (which invalidates the leaves whose dirty bit it cleared).
    ///
    /// - Throws: `SLATError/dirtyLoggingNotEnabled(slot:)`,
    ///   `SLATError/dirtyLogNotClearedManually(slot:)`, `SLATError/tornDown`.
    func getDirtyLog(memslot: UInt32) throws(SLATError) -> [UInt64]

    /// Clears the marks `bitmap` names from the log of memslot `memslot`
    /// and write-protects again (or cleans the dirty bit of) each page whose
    /// mark it cleared (`KVM_CLEAR_DIRTY_LOG`). Bit *n* of `bitmap[w]` is
    /// page `firstPage + 64·w + n` of the slot; a page not marked is left
    /// alone. From its return, every write to a cleared page is logged
    /// again: copy a page after the clear that covers it.
    ///
    /// Locking contract: takes the MMU lock exclusively; the caller holds
    /// none. TLB contract: every page re-protected is invalidated before it
    /// returns.
    /// - Throws: `SLATError/dirtyLoggingNotEnabled(slot:)`,
    ///   `SLATError/dirtyLogNotClearedManually(slot:)`,
    ///   `SLATError/dirtyLogClearOutOfRange(slot:firstPage:pageCount:slotPages:)`
    ///   (`firstPage` not a multiple of 64, or a bit past the slot's end),
    ///   `SLATError/tornDown`; the log is unchanged then. On
    ///   `SLATError/outOfTableMemory(needed:available:)` (stage 2, a marked
    ///   page inside a block that must be split) the marks are restored.
    func clearDirtyLog(memslot: UInt32, firstPage: UInt64, bitmap: [UInt64]) throws(SLATError)

    /// Stops logging memslot `memslot` (harvest it first); huge pages come
    /// back as the backend rebuilds them.
    func disableDirtyLogging(memslot: UInt32) throws(SLATError)

    /// Removes every translation of the guest frames `frames` (KVM's
    /// `kvm_unmap_gfn_range`) in `addressSpace`, or in every address space
    /// when `nil`; a huge leaf that only overlaps is removed whole. The VMM
    /// calls it when it changes guest memory behind SLAT's back (the host
    /// page map's notifier events zap on their own). Returns the number of
    /// leaves removed.
    ///
    /// Locking contract: takes the MMU lock exclusively; the caller holds
    /// none. TLB contract: everything removed is invalidated before it
    /// returns.
    /// - Throws: `SLATError/addressSpaceOutOfRange(_:count:)`,
    ///   `SLATError/guestRangeOutOfBounds(_:limit:)` for frames beyond the
    ///   input address size, `SLATError/tornDown`; nothing changed.
    @discardableResult
    func zap(_ frames: GuestFrameRange, addressSpace: Int?) throws(SLATError) -> Int

    /// Whether any guest page backed by the host range `range` was accessed
    /// since its young state was last cleared (mmu-notifier test-young).
    /// Changes nothing.
    func testYoung(_ range: HostVirtualRange, context: PageTableContext) throws(SLATError) -> Bool

    /// Clears the young state of the guest pages backed by `range` and says
    /// whether any was young (mmu-notifier clear-young). Owes no flush.
    func clearYoung(_ range: HostVirtualRange, context: PageTableContext) throws(SLATError) -> Bool

    /// Frees the tables and stops listening to notifiers; idempotent. The
    /// caller has stopped the vCPUs.
    func teardown()

    /// Whether ``teardown()`` has run.
    var isTornDown: Bool { get }
}

extension SecondStageMMU {
    /// Starts logging memslot `memslot`, re-protected at each harvest
    /// (``DirtyLogProtection/onHarvest``); see
    /// ``enableDirtyLogging(memslot:protection:)``.
    @inlinable
    public func enableDirtyLogging(memslot: UInt32) throws(SLATError) {
        try enableDirtyLogging(memslot: memslot, protection: .onHarvest)
    }

    /// Maps `range` ahead of the guest's accesses (KVM's
    /// `KVM_PRE_FAULT_MEMORY`): a read fault for each address no leaf maps
    /// yet, re-run while it races, skipping whole leaves already there;
    /// returns how many faults installed a leaf.
    ///
    /// - Throws: as ``handleFault(_:vcpu:)``; a page without a memslot
    ///   throws ``SLATError/noMemslot(_:)`` (pre-faulting MMIO is an error).
    @discardableResult
    public func preFault(_ range: GuestPhysicalRange, vcpu: PageTableContext) throws(SLATError) -> Int {
        var mapped = 0
        var address = range.start.alignedDown(to: format.pageSize)
        while address < range.end {
            if let leaf = try translate(address, context: vcpu).translation {
                address = leaf.leafAddress.advanced(by: leaf.size)
                continue
            }
            let fault = SecondStageFault(address: address, access: .read)
            var outcome = try handleFault(fault, vcpu: vcpu)
            while outcome.isRetry { outcome = try handleFault(fault, vcpu: vcpu) }
            if case .mapped = outcome { mapped += 1 }
            if try translate(address, context: vcpu).translation == nil {
                address = address.advanced(by: format.pageSize)     // unmapped again at once (a racing zap)
            }
        }
        return mapped
    }
}
