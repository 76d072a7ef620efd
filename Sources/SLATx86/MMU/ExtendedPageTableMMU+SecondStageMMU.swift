import SLATCore

/// The TDP MMU as SLATCore's architecture-neutral ``SecondStageMMU``: the
/// same fault loop, dirty logging and aging code drives it and the stage-2
/// MMU. Levels in outcomes are the SDM's (level 1 holds 4 KiB pages).
extension ExtendedPageTableMMU: SecondStageMMU {
    /// Handles an EPT violation given in the neutral form (see
    /// ``handleFault(_:vcpu:)-(GuestPageFault,_)``, whose errors it throws).
    /// The TDP MMU does not say which race made a fault retry:
    /// `SecondStageRetryReason.concurrentChange`.
    @inlinable
    public func handleFault(_ fault: SecondStageFault, vcpu: PageTableContext) throws(SLATError) -> SecondStageFaultOutcome {
        let access: GuestAccess = switch fault.access {
        case .read: .read
        case .write: .write
        case .execute: .execute
        case .userExecute: .userExecute
        }
        let outcome = try handleFault(
            GuestPageFault(address: fault.address, access: access, isPermissionFault: fault.isPermissionFault,
                           addressSpace: fault.addressSpace),
            vcpu: vcpu)
        switch outcome {
        case .fixed(let level): return .mapped(level: format.architecturalLevel(level))
        case .spurious: return .spurious
        case .retry: return .retry(.concurrentChange)
        }
    }

    /// The translation of `address` in address space 0's current root,
    /// inside a read section of `context`'s reader slot.
    ///
    /// - Throws: `SLATError.readerSlotOutOfRange(_:slots:)`, `SLATError.tornDown`.
    @inlinable
    public func translate(_ address: GuestPhysicalAddress, context: PageTableContext) throws(SLATError) -> TranslationResult {
        _ = try checkedSlot(context)
        return try table().translate(address, context: context)
    }

    /// The EPTP of address space 0's current root, recorded as loaded by
    /// `vcpu` (``reloadRoot(_:addressSpace:)``).
    @inlinable
    public func loadRoot(_ vcpu: PageTableContext) throws(SLATError) -> UInt64 {
        try reloadRoot(vcpu, addressSpace: 0).rawValue
    }

    /// Starts dirty logging in the MMU's configured mode, re-protected at
    /// each harvest (``enableDirtyLogging(memslot:mode:protection:)``).
    @inlinable
    public func enableDirtyLogging(memslot: UInt32) throws(SLATError) {
        try enableDirtyLogging(memslot: memslot, mode: nil, protection: .onHarvest)
    }

    /// Starts dirty logging in the MMU's configured mode with `protection`
    /// (``enableDirtyLogging(memslot:mode:protection:)``).
    @inlinable
    public func enableDirtyLogging(memslot: UInt32, protection: DirtyLogProtection) throws(SLATError) {
        try enableDirtyLogging(memslot: memslot, mode: nil, protection: protection)
    }

    /// Stops dirty logging and recovers the huge pages
    /// (``disableDirtyLogging(memslot:recoverHugePages:)``).
    @inlinable
    public func disableDirtyLogging(memslot: UInt32) throws(SLATError) {
        try disableDirtyLogging(memslot: memslot, recoverHugePages: true)
    }
}
