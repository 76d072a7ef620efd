/// Where a table operation gets pages when the caller's ``TablePageCache``
/// holds fewer than it needs.
///
/// A value type; it takes no lock.
public enum PageCacheRefill: Hashable, Sendable {
    /// Allocate from the table memory and go on. For callers that may
    /// allocate where they stand (no MMU lock held, or a lock under which
    /// allocating is acceptable to them).
    case fromMemory
    /// Never allocate: stop where the cache ran short and report a
    /// ``PageCacheShortfall``. For callers holding the MMU lock (KVM's
    /// rule: the memory cache is topped up outside `mmu_lock`): they settle
    /// what the operation owes, drop the lock, top the cache up, retake the
    /// lock and call again from the shortfall's resume address. Everything
    /// before that address is done; operations are idempotent, so redoing
    /// from there is correct.
    case never
}

/// Where an operation stopped because its page cache ran short, and how
/// many pages to top the cache up to before calling again.
///
/// A value type; it takes no lock.
public struct PageCacheShortfall: Hashable, Sendable {
    /// Call again with the range starting here (granule-aligned, inside
    /// the original range).
    public var resumeAddress: GuestPhysicalAddress
    /// Top the cache up to at least this many pages first.
    public var pagesWanted: Int

    /// A shortfall at `resumeAddress` of `pagesWanted` pages.
    @inlinable
    public init(resumeAddress: GuestPhysicalAddress, pagesWanted: Int) {
        self.resumeAddress = resumeAddress
        self.pagesWanted = pagesWanted
    }
}
