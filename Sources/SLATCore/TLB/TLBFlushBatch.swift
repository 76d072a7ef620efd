/// Invalidations an operation owes the TLB, and the table pages that may be
/// freed only once they are done (rule 3 of Docs/concurrency.md).
///
/// Operations add to a batch instead of flushing one entry at a time; the
/// caller settles it once with ``PageTable/settle(_:tlb:mode:)`` (which
/// flushes, then frees or retires the pages) or ``flush(to:)``, or — for
/// tables no CPU has ever loaded — ``discard()``. A batch dropped while it
/// still owes something traps: a lost flush is a stale translation in some
/// vCPU's TLB, a lost page is a leak.
public struct TLBFlushBatch: ~Copyable {
    /// What is owed.
    public var requests = FlushRequests()
    @usableFromInline var settled = false

    /// An empty batch.
    public init() {}

    deinit {
        // A batch that owes invalidations or table pages must be settled
        // (settle/commit); dropping it would leave TLB entries to freed or
        // changed tables. SLAT settles every batch it makes; a caller's batch
        // dropped unsettled has no error to return from a deinit.
        precondition(settled || requests.isEmpty, "a TLB flush batch was dropped while it still owed invalidations or pages")
    }

    /// Whether the batch owes no invalidation and holds no page.
    @inlinable public var isEmpty: Bool { requests.isEmpty }
    /// Whether settling will flush the whole context.
    @inlinable public var needsWholeContextFlush: Bool { requests.wholeContext }
    /// Pages waiting for the flush.
    @inlinable public var pendingPageCount: Int { requests.pagesToFree.count }

    /// Owes an invalidation of `address`, a leaf of `size` bytes at `level`.
    @inlinable
    public mutating func invalidate(address: GuestPhysicalAddress, level: LeafLevel, size: UInt64) {
        requests.invalidate(address: address, level: level, size: size)
    }
    /// Owes an invalidation of every translation in `range`.
    @inlinable
    public mutating func invalidate(range: GuestPhysicalRange) { requests.invalidate(range: range) }
    /// Owes a whole-context invalidation.
    @inlinable
    public mutating func invalidateAll() { requests.invalidateAll() }
    /// Frees `page` only after the flush.
    @inlinable
    public mutating func freeAfterFlush(_ page: HostPhysicalAddress) { requests.freeAfterFlush(page) }

    /// Issues what the batch owes to `tlb` and returns the pages that are now
    /// safe to free (or to retire, when shared walkers may still hold them).
    public consuming func flush<T: TLB>(to tlb: T) -> [HostPhysicalAddress] {
        requests.issue(to: tlb)
        settled = true
        return requests.pagesToFree
    }

    /// Drops the owed invalidations because no CPU can hold the old
    /// translations (tables never loaded into hardware). Returns the pages
    /// it held, for the caller to free.
    public consuming func discard() -> [HostPhysicalAddress] {
        settled = true
        return requests.pagesToFree
    }
}
