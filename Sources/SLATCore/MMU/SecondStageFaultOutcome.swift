/// Why a fault changed nothing because of a race: the vCPU re-runs the
/// access, which either succeeds or faults again.
///
/// A value type; it takes no lock.
@frozen
public enum SecondStageRetryReason: Hashable, Sendable {
    /// An mmu-notifier invalidation of the frame is in flight or ended since
    /// the host page was resolved.
    case invalidationInProgress
    /// The memslots changed since the frame was resolved.
    case memslotsChanged
    /// Another thread owned (had frozen) the entry.
    case lockedEntry
    /// A racing vCPU's fault installed the page with other permissions
    /// first, and a fault must not change them.
    case permissionOnlyChangeRefused
    /// Another change raced this fault (the backend does not say which).
    case concurrentChange
}

/// What handling a second-level fault did, in either architecture. Levels
/// are the architecture's numbers (Arm ARM level 2 or Intel SDM level 2 is a
/// 2 MiB leaf).
///
/// A value type; it takes no lock.
@frozen
public enum SecondStageFaultOutcome: Hashable, Sendable {
    /// A leaf was installed or widened at `level` (the architecture's
    /// numbering); the vCPU re-runs the access.
    case mapped(level: Int)
    /// The existing leaf was given the permissions the access needs.
    case permissionsRelaxed
    /// The existing leaf's access flag was set (stage 2 without hardware
    /// access-flag updates).
    case madeYoung
    /// The tables already allowed the access (another vCPU fixed it first,
    /// or the vCPU's TLB held an entry that faulted, which was invalidated).
    case spurious
    /// Nothing changed because of a race; re-run the access.
    case retry(SecondStageRetryReason)

    /// Whether nothing changed because of a race. A loop that faults until
    /// this is false ends on every other outcome, `spurious` included.
    @inlinable
    public var isRetry: Bool {
        if case .retry = self { return true }
        return false
    }
}
