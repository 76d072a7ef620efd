/// Per-vCPU (per-thread) state an operation needs, passed explicitly as KVM
/// passes its `vcpu`: the cache of preallocated table pages and the reader
/// slot this thread uses in the table's ``EpochReclaimer``.
///
/// Not thread-safe and not `Sendable`: each thread owns one. Two threads
/// must not share a reader slot.
public final class PageTableContext {
    /// Preallocated zeroed table pages, topped up outside the MMU lock.
    // Unchecked exclusivity: the context belongs to one thread by contract,
    // and the fault path reads the cache's count on every fault, where the
    // dynamic exclusivity check of a class property costs more than the read.
    @exclusivity(unchecked) public var pageCache = TablePageCache()
    /// The number of pages in ``pageCache``, for a fault path that checks
    /// it on every fault. Not inlinable on purpose: a read of the property
    /// inlined into another module pays a dynamic exclusivity check there
    /// (the `unchecked` attribute does not travel), which costs more than
    /// this call.
    @inline(never)
    public var cachedPageCount: Int { pageCache.count }
    /// This thread's slot in the reclaimer (`0..<slotCount`).
    public let readerSlot: Int

    /// A context using reader slot `readerSlot`.
    public init(readerSlot: Int = 0) {
        self.readerSlot = readerSlot
    }
}
