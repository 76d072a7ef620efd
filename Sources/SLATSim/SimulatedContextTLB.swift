import SLATCore

/// The TLBs of one translation context (one VMID on Arm, one EPTP on
/// Intel): one ``SimulatedTLB`` per vCPU. It conforms to SLATCore's `TLB`,
/// so a backend passes it wherever it passes a TLB, and every invalidation
/// is broadcast to every vCPU's TLB and returns once all are done (as
/// TLBI ...IS / INVEPT with shoot-down IPIs).
///
/// Attach the ``HardwareWalker`` of the tables (``attach(_:)``) to enable
/// the stale-translation detectors, and wrap the table memory in a
/// ``SimulatedTableMemory`` watching this context for the freed-table
/// detector. Reports go to ``log``.
///
/// Thread safety: all methods may be called from any thread.
public final class SimulatedContextTLB: TLB {
    /// The context identifier (VMID / EPTP) recorded in entries.
    public let context: UInt64
    /// One TLB per vCPU, indexed by vCPU number.
    public let vcpus: [SimulatedTLB]
    /// Where every detector report of this context goes.
    public let log: SimulationLog
    /// Bytes an entry at each level (height) maps, from the format.
    public let levelSizes: [UInt64]

    let grantCheck = GrantCheck()
    private let counter = CountingTLB()

    /// The TLBs of a context of `vcpuCount` vCPUs for tables of `format`.
    ///
    /// - Parameters:
    ///   - format: gives the entry size of each level.
    ///   - vcpuCount: vCPUs (at least 1).
    ///   - context: identifier recorded in entries and reports.
    ///   - capacity: entries each vCPU's TLB holds before evicting the oldest.
    ///   - log: where reports go (a new collecting log by default).
    ///   - reportsConflicts: report entries of different sizes covering one
    ///     address; `nil` chooses as the hardware behaves: on for formats
    ///     with break-before-make (Arm: conflict abort), off otherwise
    ///     (Intel uses either entry; a missed flush there shows up as a
    ///     stale entry or freed table instead).
    ///   - honoursLevelHints: whether a level hint restricts an address
    ///     invalidation to entries at that level (Arm TTL hints; the strict
    ///     default, which catches wrong hints).
    public init<Format: PageTableFormat>(
        format: Format, vcpuCount: Int, context: UInt64 = 0, capacity: Int = 1024,
        log: SimulationLog = SimulationLog(), reportsConflicts: Bool? = nil, honoursLevelHints: Bool = true
    ) {
        // A test's own configuration: SLATSim is test support, never on a
        // VMM's path, and stopping here is that test failing at its setup.
        precondition(vcpuCount > 0, "a context needs at least one vCPU")
        let sizes = (0...format.rootLevel).map { format.entrySize(atLevel: $0) }
        let conflicts = reportsConflicts ?? format.requiresBreakBeforeMake
        self.context = context
        self.log = log
        self.levelSizes = sizes
        let check = grantCheck
        self.vcpus = (0..<vcpuCount).map {
            SimulatedTLB(vcpu: $0, context: context, sizes: sizes, capacity: capacity, log: log,
                         reportsConflicts: conflicts, honoursLevelHints: honoursLevelHints, grantCheck: check)
        }
    }

    /// vCPU `index`'s TLB.
    public func vcpu(_ index: Int) -> SimulatedTLB { vcpus[index] }

    /// Enables the stale-translation detectors: entries are checked against
    /// the tables `walker` walks (read-only walks, no flag updates).
    public func attach<Format: PageTableFormat, Memory: TableMemory>(_ walker: HardwareWalker<Format, Memory>) {
        grantCheck.set { walker.stillGrants($0) }
    }

    /// Checks every cached entry against the tables of the root it was
    /// walked from (the first page of its path): for VMs whose vCPUs may
    /// use different roots for a while (a root replaced while a vCPU has
    /// not yet loaded the new one). `walker(root)` makes a read-only walker
    /// of the tables below `root`.
    public func attachPerRoot<Format: PageTableFormat, Memory: TableMemory>(
        _ walker: @escaping @Sendable (HostPhysicalAddress) -> HardwareWalker<Format, Memory>
    ) {
        grantCheck.set { cached in
            guard cached.path.count > 0 else { return false }
            return walker(cached.path[0]).stillGrants(cached)
        }
    }

    /// Invalidations requested of the context (each counted once, not per vCPU).
    public var counts: TLBInvalidationCounts { counter.counts }

    /// Every entry of every vCPU.
    public var entries: [CachedTranslation] { vcpus.flatMap(\.entries) }

    /// Invalidates `address` in every vCPU's TLB (a level hint restricts it
    /// to entries of that level where hints are honoured); returns when all
    /// are done, including walks in flight on them.
    public func invalidate(address: GuestPhysicalAddress, level: LeafLevel?) {
        counter.invalidate(address: address, level: level)
        for tlb in vcpus { tlb.invalidate(address: address, level: level) }
    }

    /// Invalidates every entry overlapping `range` in every vCPU's TLB.
    public func invalidate(range: GuestPhysicalRange) {
        counter.invalidate(range: range)
        for tlb in vcpus { tlb.invalidate(range: range) }
    }

    /// Invalidates every entry of the context in every vCPU's TLB.
    public func invalidateAll() {
        counter.invalidateAll()
        for tlb in vcpus { tlb.invalidateAll() }
    }

    /// Declares a quiescent point — every operation so far has reported done
    /// and no table change is in flight — and checks that every cached entry
    /// of every vCPU is still granted by the tables (same or larger leaf,
    /// same output, at least its permissions, and its dirty flag where
    /// hardware tracks one). Entries that are not are reported
    /// (``SimulationReportKind/staleEntry``, or ``SimulationReportKind/staleUse``
    /// if used after an invalidation covered them and left them) and their
    /// next use is reported as a stale use.
    ///
    /// Precondition: a walker is attached (``attach(_:)``).
    /// - Returns: the reports this check made (also recorded in ``log``).
    @discardableResult
    public func verifyCoherence() -> [SimulationReport] {
        guard let check = grantCheck.current else {
            // A test's own setup (see above): coherence needs the walker's view
            // of the tables, attached when the test builds its HardwareWalker.
            preconditionFailure("verifyCoherence needs a HardwareWalker attached to the context")
        }
        return vcpus.flatMap { $0.verifyCoherence(check) }
    }

    /// Runs the freed-table detector for `page` over every vCPU TLB.
    @discardableResult
    public func checkTableFree(_ page: HostPhysicalAddress) -> [SimulationReport] {
        vcpus.compactMap { $0.tableFreed(page) }
    }
}
