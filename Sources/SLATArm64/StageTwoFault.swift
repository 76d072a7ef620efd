import SLATCore

/// The access a vCPU made when stage 2 faulted (from `ESR_EL2`).
///
/// A value type; it takes no lock.
public enum StageTwoAccess: Hashable, Sendable {
    /// A data read.
    case read
    /// A data write.
    case write
    /// An instruction fetch.
    case execute
}

/// A stage-2 fault as the exception handler reports it: the faulting IPA
/// (`HPFAR_EL2` with the page offset), the access and, when known, the
/// kind of fault (the fault status code).
///
/// A value type; it takes no lock.
@frozen
public struct StageTwoFault: Hashable, Sendable {
    /// The faulting intermediate physical address.
    public var address: GuestPhysicalAddress
    /// What the vCPU was doing.
    public var access: StageTwoAccess
    /// The kind of fault `ESR_EL2`'s fault status code reports, or `nil`
    /// when the caller does not know it. Only a write reported as a
    /// ``StageTwoAbortKind/permission`` fault tries the handler's lockless
    /// fast permission fault first (a translation fault would only pay for
    /// its failed walk); every kind is handled correctly either way.
    public var kind: StageTwoAbortKind?

    /// A fault at `address` on `access`, of `kind` when known.
    @inlinable
    public init(address: GuestPhysicalAddress, access: StageTwoAccess, kind: StageTwoAbortKind? = nil) {
        self.address = address
        self.access = access
        self.kind = kind
    }
}

/// Why a fault returned to the guest without mapping: the vCPU re-runs the
/// access, which either succeeds or faults again.
///
/// A value type; it takes no lock.
public enum StageTwoFaultRetryReason: Hashable, Sendable {
    /// An mmu-notifier invalidation of the frame is in flight or ended
    /// since the host page was resolved.
    case invalidationInProgress
    /// The memslots changed since the frame was resolved (its flags, such
    /// as dirty logging, may be stale).
    case memslotsChanged
    /// Another thread owned (had locked) the entry.
    case lockedEntry
    /// The leaf already maps the page with other permissions: a racing
    /// vCPU's fault got there first, and a map must not change permissions
    /// (it could downgrade the other vCPU's).
    case permissionOnlyChangeRefused
}

/// What handling a stage-2 fault did.
///
/// A value type; it takes no lock.
public enum StageTwoFaultOutcome: Hashable, Sendable {
    /// A leaf was installed at `level` (new, or splitting a block, or
    /// replacing tables by a block through the anchored merge).
    case mapped(level: Int)
    /// The existing leaf was given the permissions the access needs.
    case permissionsRelaxed
    /// The existing leaf's access flag was set.
    case madeYoung
    /// The tables already allowed the access (another vCPU fixed it first,
    /// or this vCPU's TLB held an entry that faulted, which the handler
    /// invalidated); the access succeeds when re-run. Not a retry: a loop
    /// that faults until the outcome is not a retry stops here (as x86's
    /// `FaultOutcome.spurious`).
    case spurious
    /// Nothing changed because of a race; the guest re-runs the access,
    /// which may fault again.
    case retry(StageTwoFaultRetryReason)
}

extension StageTwoFaultOutcome {
    /// Whether nothing changed and the guest simply re-runs the access.
    @inlinable
    public var isRetry: Bool {
        if case .retry = self { return true }
        return false
    }
}
