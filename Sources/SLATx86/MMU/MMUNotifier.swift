import SLATCore

// mmu-notifier integration: ``GuestMemory`` begins the tracker's
// invalidation before it calls its listeners and ends it (bumping the
// sequence) after the host change, so this listener only has to zap.
extension ExtendedPageTableMMU {
    /// The listener registered on ``guestMemory``: on `start` it zaps the
    /// range in every address space and flushes before returning (rule 6:
    /// no translation of the range is used after `start` returns); faults
    /// that resolved the old host page retry through the tracker. `end`
    /// needs nothing here.
    ///
    /// Locking contract: called on the thread changing the host map; takes
    /// the MMU lock exclusively.
    public func handleInvalidation(_ event: GuestInvalidation) {
        guard event.phase == .start else { return }
        zap(event.range)
    }
}
