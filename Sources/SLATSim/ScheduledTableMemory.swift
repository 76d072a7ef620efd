import SLATCore

/// A `TableMemory` wrapper that puts table memory under a
/// ``ControlledScheduler`` and checks page accounting.
///
/// - Every call that reads or changes the tables first yields to the
///   scheduler: ``entries(at:)`` (each level of each software walk — it
///   offers no linear map, so walks cannot bypass it), the live-entry
///   counts, allocation and freeing.
/// - A freed page is not given back to the wrapped memory: it is kept in
///   quarantine, every entry overwritten with `poison` (the format's
///   frozen entry is a good choice: a walker that still reaches the page
///   sees a locked entry), so it is never reused and a late reader sees
///   the poison. A free of a page that is not allocated (freed twice,
///   never given out) and ``entries(at:)`` of a freed page are recorded in
///   ``violations`` and as the scheduler's failure; the double free is not
///   forwarded, so the wrapped memory does not trap.
///
/// Put a ``SimulatedTableMemory`` *around* it to keep the freed-table
/// detector. Give the simulated hardware walker the wrapped memory, not
/// this one: a hardware access is one scheduling step
/// (``SchedulingPoint/hardwareAccess``), taken with its TLB locked.
///
/// Thread safety: as the wrapped memory; the page sets are behind a mutex.
public final class ScheduledTableMemory<Base: TableMemory>: TableMemory {
    struct Pages {
        var allocated: Set<UInt64> = []
        var quarantined: Set<UInt64> = []
        var violations: [String] = []
    }

    /// The memory the pages come from.
    public let base: Base
    /// The scheduler every access yields to.
    public let scheduler: ControlledScheduler
    /// What freed pages are filled with (`nil`: left as they were).
    public let poison: UInt64?
    let pages = PThreadLocked(Pages())

    /// Wraps `base` for `scheduler`; freed pages are filled with `poison`.
    public init(wrapping base: Base, scheduler: ControlledScheduler, poison: UInt64? = nil) {
        self.base = base
        self.scheduler = scheduler
        self.poison = poison
    }

    /// Accounting violations so far (double frees, reads of freed pages).
    public var violations: [String] { pages.withLock { $0.violations } }
    /// Pages freed and kept in quarantine.
    public var quarantinedPages: Set<HostPhysicalAddress> {
        Set(pages.withLock { $0.quarantined }.map { HostPhysicalAddress($0) })
    }
    /// Pages given out and not freed.
    public var livePages: Set<HostPhysicalAddress> {
        Set(pages.withLock { $0.allocated }.map { HostPhysicalAddress($0) })
    }

    func violation(_ message: String) {
        pages.withLock { $0.violations.append(message) }
        scheduler.recordFailure(message)
    }

    /// The wrapped memory's page size.
    public var pageSize: Int { base.pageSize }

    /// Yields, then a page from the wrapped memory.
    public func allocatePage() throws(SLATError) -> HostPhysicalAddress {
        scheduler.yield(at: .tableAllocation)
        let page = try base.allocatePage()
        pages.withLock { _ = $0.allocated.insert(page.rawValue) }
        return page
    }

    /// Yields, then contiguous pages from the wrapped memory.
    public func allocateContiguousPages(_ count: Int) throws(SLATError) -> HostPhysicalAddress {
        scheduler.yield(at: .tableAllocation)
        let first = try base.allocateContiguousPages(count)
        pages.withLock { state in
            for index in 0..<count { state.allocated.insert(first.rawValue + UInt64(index * pageSize)) }
        }
        return first
    }

    /// Yields, then quarantines and poisons the page (a page not allocated
    /// is a violation and is left alone).
    public func freePage(_ page: HostPhysicalAddress) {
        scheduler.yield(at: .tableFree)
        let wasAllocated = pages.withLock { state in
            guard state.allocated.remove(page.rawValue) != nil else { return false }
            state.quarantined.insert(page.rawValue)
            return true
        }
        guard wasAllocated else {
            violation("table page \(page) freed but not allocated (freed twice?)")
            return
        }
        if let poison {
            let entries = base.entries(at: page)
            for index in 0..<(pageSize / 8) { entries[index].store(poison, ordering: .releasing) }
        }
    }

    /// Yields, then the wrapped memory's entries of `page` (a freed page is
    /// a violation; its poisoned entries are still returned).
    public func entries(at page: HostPhysicalAddress) -> EntryPointer {
        scheduler.yield(at: .tableAccess)
        if pages.withLock({ $0.quarantined.contains(page.rawValue) }) {
            violation("table page \(page) read after it was freed")
        }
        return base.entries(at: page)
    }

    /// The wrapped memory's page holding `entry` (no yield: arithmetic).
    public func page(containing entry: EntryPointer) -> HostPhysicalAddress { base.page(containing: entry) }

    /// Yields, then the wrapped memory's live-entry count of `page`.
    public func liveEntryCount(of page: HostPhysicalAddress) -> Int {
        scheduler.yield(at: .entryCount)
        return base.liveEntryCount(of: page)
    }

    /// Yields, then adjusts the wrapped memory's live-entry count.
    @discardableResult
    public func adjustLiveEntryCount(containing entry: EntryPointer, by delta: Int) -> Int {
        scheduler.yield(at: .entryCount)
        return base.adjustLiveEntryCount(containing: entry, by: delta)
    }

    /// Sets the wrapped memory's live-entry count (page not yet shared: no yield).
    public func setLiveEntryCount(of page: HostPhysicalAddress, to count: Int) {
        base.setLiveEntryCount(of: page, to: count)
    }

    /// The wrapped memory's free pages (quarantined pages are not free).
    public var freePageCount: Int { base.freePageCount }
    /// Pages given out through this memory and not freed.
    public var allocatedPageCount: Int { pages.withLock { $0.allocated.count } }
    /// The wrapped memory's allocations so far.
    public var totalAllocations: Int { base.totalAllocations }
    /// The wrapped memory's frees plus the quarantined pages.
    public var totalFrees: Int { base.totalFrees + pages.withLock { $0.quarantined.count } }
    /// None: every walk goes through ``entries(at:)``.
    public var linearMap: LinearTableMap? { nil }
}
