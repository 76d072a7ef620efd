/// When the pages a dirty log reports are write-protected again: at the
/// harvest, or when the VMM clears them (KVM's
/// `KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2`).
///
/// With ``onHarvest`` a VMM calls `getAndClearDirtyLog(memslot:)`, which
/// takes the bitmap and re-protects every page it reports before it
/// returns. With ``manual(initiallySet:)`` it reads the log with
/// `getDirtyLog(memslot:)`, which clears nothing, and re-protects the pages
/// it is about to copy with `clearDirtyLog(memslot:firstPage:bitmap:)`, a
/// range at a time, so that a large memslot's protection is spread over the
/// copy instead of stalling every vCPU at the harvest. The VMM copies a page
/// only after the clear that covers it has returned: a write made between
/// the read and the clear is not logged again, but the copy sees it.
@frozen
public enum DirtyLogProtection: Hashable, Sendable {
    /// The harvest re-protects what it reports (`KVM_GET_DIRTY_LOG` without
    /// manual protection). The default.
    case onHarvest
    /// The VMM re-protects pages with a clear (`KVM_CLEAR_DIRTY_LOG`).
    /// With `initiallySet` (`KVM_DIRTY_LOG_INITIALLY_SET`) enabling the log
    /// reports every page dirty and protects no small page: the first
    /// clears do the protection, range by range.
    case manual(initiallySet: Bool)

    /// Whether pages are re-protected by a clear rather than by the harvest.
    @inlinable
    public var isManual: Bool {
        if case .manual = self { return true }
        return false
    }

    /// Whether enabling the log marks every page and protects none.
    @inlinable
    public var isInitiallySet: Bool {
        if case .manual(initiallySet: true) = self { return true }
        return false
    }
}
