import SLATCore
import Synchronization

/// A ``TableMemory`` wrapper that runs the freed-table detector: when a
/// table page is freed while a watched TLB still holds a translation whose
/// walk went through it, that is reported as
/// ``SimulationReportKind/freedTableStillCached`` (the flush owed before
/// the free — DESIGN.md rule 3 — missed it). Everything else is forwarded to
/// the wrapped memory, including its linear map, so walks cost the same.
///
/// Thread safety: as the wrapped memory; the watch list is behind a mutex.
public final class SimulatedTableMemory<Base: TableMemory>: TableMemory {
    /// The memory the pages come from.
    public let base: Base
    private let watched = Mutex<[SimulatedContextTLB]>([])

    /// Wraps `base`; `watching` lists contexts to check on every free.
    public init(wrapping base: Base, watching contexts: [SimulatedContextTLB] = []) {
        self.base = base
        watched.withLock { $0 = contexts }
    }

    /// Also checks `context`'s TLBs on every free.
    public func watch(_ context: SimulatedContextTLB) {
        watched.withLock { $0.append(context) }
    }

    public var pageSize: Int { base.pageSize }
    public func allocatePage() throws(SLATError) -> HostPhysicalAddress { try base.allocatePage() }
    public func allocateContiguousPages(_ count: Int) throws(SLATError) -> HostPhysicalAddress {
        try base.allocateContiguousPages(count)
    }

    /// Runs the detector over every watched context, then frees the page.
    public func freePage(_ page: HostPhysicalAddress) {
        let contexts = watched.withLock { $0 }
        for context in contexts { context.checkTableFree(page) }
        base.freePage(page)
    }

    public func entries(at page: HostPhysicalAddress) -> EntryPointer { base.entries(at: page) }
    public func page(containing entry: EntryPointer) -> HostPhysicalAddress { base.page(containing: entry) }
    public func liveEntryCount(of page: HostPhysicalAddress) -> Int { base.liveEntryCount(of: page) }
    @discardableResult
    public func adjustLiveEntryCount(containing entry: EntryPointer, by delta: Int) -> Int {
        base.adjustLiveEntryCount(containing: entry, by: delta)
    }
    public func setLiveEntryCount(of page: HostPhysicalAddress, to count: Int) { base.setLiveEntryCount(of: page, to: count) }
    public var freePageCount: Int { base.freePageCount }
    public var allocatedPageCount: Int { base.allocatedPageCount }
    public var totalAllocations: Int { base.totalAllocations }
    public var totalFrees: Int { base.totalFrees }
    public var linearMap: LinearTableMap? { base.linearMap }
}
