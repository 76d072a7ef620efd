import SLATCore

/// A backend whose dirty logging can start after an eager split: the
/// second half of enabling dirty logging, the write protection (or
/// dirty-bit clearing) of the memslot. ``EagerSplitDirtyLogging`` calls it
/// after the memslot is flagged and split.
public protocol DirtyLogProtectionBackend: EagerSplitBackend {
    /// Starts logging the writes to `memslot` (already flagged
    /// `SLATCore/MemslotFlags/dirtyLogging`): protects its leaves so that
    /// the next write to each page is caught, with every invalidation this
    /// owes completed before it returns.
    ///
    /// Locking contract: the caller holds no MMU lock; `lock` is the VM's
    /// MMU lock, taken exclusively as the backend needs. `context` is the
    /// calling thread's (its cache may supply pages, topped up outside the lock).
    /// - Throws: the backend's dirty-logging errors; nothing is protected then.
    func protectForDirtyLogging<Lock: ReaderWriterLock>(
        memslot: Memslot, guestMemory: GuestMemory, lock: Lock, context: PageTableContext
    ) throws(SLATError)
}
