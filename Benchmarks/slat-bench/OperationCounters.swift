import SLAT

/// What one timed operation asked of the TLB and of the table arena: the
/// difference between two ``CounterSnapshot``s.
struct OperationCounters: Sendable {
    /// By-address TLB invalidations.
    var tlbAddresses = 0
    /// Range TLB invalidations.
    var tlbRanges = 0
    /// Whole-context TLB invalidations.
    var tlbContexts = 0
    /// Pages the arena handed out (tables, and pages reserved in the page cache).
    var tablesAllocated = 0
    /// Pages returned to the arena.
    var tablesFreed = 0
    /// Whether the workload counted at all (reports print `-` otherwise).
    var measured = true

    /// For workloads whose fixture has no counting TLB or arena to read.
    static let unmeasured: OperationCounters = {
        var counters = OperationCounters()
        counters.measured = false
        return counters
    }()

    /// No counts.
    init() {}

    /// The counts between `before` and `after`.
    init(from before: CounterSnapshot, to after: CounterSnapshot) {
        tlbAddresses = after.tlb.addresses - before.tlb.addresses
        tlbRanges = after.tlb.ranges - before.tlb.ranges
        tlbContexts = after.tlb.contexts - before.tlb.contexts
        tablesAllocated = after.allocations - before.allocations
        tablesFreed = after.frees - before.frees
    }

    /// All TLB invalidations together.
    var tlbTotal: Int { tlbAddresses + tlbRanges + tlbContexts }
}

/// The running totals of a ``CountingTLB`` and a ``TableArena`` at one instant.
struct CounterSnapshot: Sendable {
    /// Invalidations requested so far.
    let tlb: TLBInvalidationCounts
    /// Pages ever allocated.
    let allocations: Int
    /// Pages ever freed.
    let frees: Int

    /// Reads the totals now.
    init(tlb: CountingTLB, arena: TableArena) {
        self.tlb = tlb.counts
        self.allocations = arena.totalAllocations
        self.frees = arena.totalFrees
    }
}
