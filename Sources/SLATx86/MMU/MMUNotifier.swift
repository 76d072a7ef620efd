import SLATCore
import Synchronization

// mmu-notifier integration: ``GuestMemory`` begins the tracker's
// invalidation before it calls its listeners and ends it (bumping the
// sequence) after the host change, so this listener only has to zap.
extension ExtendedPageTableMMU {
    /// The listener registered on ``guestMemory``: on `start` it zaps the
    /// range in every address space, in the current roots and in every
    /// replaced root a vCPU may still use, and flushes before returning
    /// (rule 6: no translation of the range is used after `start`
    /// returns); faults that resolved the old host page retry through the
    /// tracker. On the `end` of a memslot's removal the memslot's dirty log
    /// goes with it (a memslot added later under the same id starts without
    /// one).
    ///
    /// Locking contract: called on the thread changing the host map; takes
    /// the MMU lock exclusively. An event delivered while ``teardown()``
    /// runs waits for the lock and then does nothing.
    public func handleInvalidation(_ event: GuestInvalidation) {
        switch event.phase {
        case .start:
            lock.lockExclusive()
            defer { lock.unlockExclusive() }
            guard !isTornDown || Self.notifierSkipsTornDownCheck else { return }
            _ = zapLocked(event.range, addressSpace: nil)
        case .end:
            if event.cause == .memslotRemoved && !Self.removedMemslotKeepsDirtyLog {
                dropDirtyLog(memslot: event.memslot)
            }
        }
    }
}
