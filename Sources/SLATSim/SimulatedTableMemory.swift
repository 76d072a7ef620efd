import SLATCore
import Synchronization

/// A `TableMemory` wrapper that runs the freed-table detector: when a
/// table page is freed while a watched TLB still holds a translation whose
/// walk went through it, that is reported as
/// ``SimulationReportKind/freedTableStillCached`` (the flush owed before
/// the free — rule 3 of Docs/concurrency.md — missed it). Everything else is forwarded to
/// the wrapped memory, including its linear map, so walks cost the same.
///
/// Thread safety: as the wrapped memory; the watch list is behind a mutex.
public final class SimulatedTableMemory<Base: TableMemory>: TableMemory {
    /// The memory the pages come from.
    public let base: Base
    /// Weak: a context's walker holds this memory, so a strong reference
    /// back would keep both (and the arena) alive forever.
    private struct Watch {
        weak var context: SimulatedContextTLB?
    }
    private let watched = PThreadLocked<[Watch]>([])

    /// Wraps `base`; `watching` lists contexts to check on every free (held
    /// weakly, see ``watch(_:)``).
    public init(wrapping base: Base, watching contexts: [SimulatedContextTLB] = []) {
        self.base = base
        watched.withLock { $0 = contexts.map { Watch(context: $0) } }
    }

    /// Also checks `context`'s TLBs on every free (held weakly: a context
    /// that is gone is no longer checked).
    public func watch(_ context: SimulatedContextTLB) {
        watched.withLock { list in
            list.removeAll { $0.context == nil }
            list.append(Watch(context: context))
        }
    }

    // Forwarded to `base` unchanged (see TableMemory for each contract).

    /// The wrapped memory's page size.
    public var pageSize: Int { base.pageSize }
    /// A page from the wrapped memory.
    public func allocatePage() throws(SLATError) -> HostPhysicalAddress { try base.allocatePage() }
    /// Contiguous pages from the wrapped memory.
    public func allocateContiguousPages(_ count: Int) throws(SLATError) -> HostPhysicalAddress {
        try base.allocateContiguousPages(count)
    }

    /// Runs the detector over every watched context, then frees the page.
    public func freePage(_ page: HostPhysicalAddress) {
        let contexts = watched.withLock { $0.compactMap(\.context) }
        for context in contexts { context.checkTableFree(page) }
        base.freePage(page)
    }

    /// The wrapped memory's entries of `page`.
    public func entries(at page: HostPhysicalAddress) -> EntryPointer { base.entries(at: page) }
    /// The wrapped memory's page holding `entry`.
    public func page(containing entry: EntryPointer) -> HostPhysicalAddress { base.page(containing: entry) }
    /// The wrapped memory's live-entry count of `page`.
    public func liveEntryCount(of page: HostPhysicalAddress) -> Int { base.liveEntryCount(of: page) }
    /// Adjusts the wrapped memory's live-entry count.
    @discardableResult
    public func adjustLiveEntryCount(containing entry: EntryPointer, by delta: Int) -> Int {
        base.adjustLiveEntryCount(containing: entry, by: delta)
    }
    /// Sets the wrapped memory's live-entry count.
    public func setLiveEntryCount(of page: HostPhysicalAddress, to count: Int) { base.setLiveEntryCount(of: page, to: count) }
    /// The wrapped memory's free pages.
    public var freePageCount: Int { base.freePageCount }
    /// The wrapped memory's allocated pages.
    public var allocatedPageCount: Int { base.allocatedPageCount }
    /// The wrapped memory's allocations so far.
    public var totalAllocations: Int { base.totalAllocations }
    /// The wrapped memory's frees so far.
    public var totalFrees: Int { base.totalFrees }
    /// The wrapped memory's linear map (walks through the wrapper cost the same).
    public var linearMap: LinearTableMap? { base.linearMap }
}
