import Synchronization

/// Collects and counts detector reports of the simulated hardware.
///
/// Shared by every TLB, walker and table-memory wrapper of a simulation;
/// safe to use from any thread (a mutex around the list, atomics for the
/// counts). Reporting never calls back into the simulator.
public final class SimulationLog: Sendable {
    /// What a report does besides being recorded.
    @frozen
    public enum Policy: Sendable {
        /// Record and count (tests then assert on ``reports`` or ``count``).
        case collect
        /// Stop the process with the report (to debug under a debugger, at
        /// the exact moment of the bad sequence).
        case trap
    }

    /// What a report does.
    public let policy: Policy
    /// Reports kept in full; further ones are only counted.
    public let retainedLimit: Int

    private let retained = PThreadLocked<[SimulationReport]>([])
    private let conflicts = Atomic<Int>(0)
    private let staleUses = Atomic<Int>(0)
    private let staleEntries = Atomic<Int>(0)
    private let freedTables = Atomic<Int>(0)

    private func counter(_ kind: SimulationReportKind) -> Int {
        switch kind {
        case .conflict: conflicts.load(ordering: .relaxed)
        case .staleUse: staleUses.load(ordering: .relaxed)
        case .staleEntry: staleEntries.load(ordering: .relaxed)
        case .freedTableStillCached: freedTables.load(ordering: .relaxed)
        }
    }

    /// A log.
    ///
    /// - Parameters:
    ///   - policy: collect (default) or trap.
    ///   - retainedLimit: reports kept in full (counting goes on beyond).
    public init(policy: Policy = .collect, retainedLimit: Int = 1024) {
        self.policy = policy
        self.retainedLimit = retainedLimit
    }

    /// Records `report` (and traps under ``Policy/trap``).
    public func record(_ report: SimulationReport) {
        if case .trap = policy { fatalError("SLATSim: \(report)") }
        switch report.kind {
        case .conflict: conflicts.wrappingAdd(1, ordering: .relaxed)
        case .staleUse: staleUses.wrappingAdd(1, ordering: .relaxed)
        case .staleEntry: staleEntries.wrappingAdd(1, ordering: .relaxed)
        case .freedTableStillCached: freedTables.wrappingAdd(1, ordering: .relaxed)
        }
        retained.withLock { list in
            if list.count < retainedLimit { list.append(report) }
        }
    }

    /// The reports kept, in the order they were recorded.
    public var reports: [SimulationReport] { retained.withLock { $0 } }

    /// Reports of `kind` kept.
    public func reports(of kind: SimulationReportKind) -> [SimulationReport] {
        reports.filter { $0.kind == kind }
    }

    /// How many reports of `kind` were recorded (kept or not).
    public func count(of kind: SimulationReportKind) -> Int {
        counter(kind)
    }

    /// How many reports were recorded.
    public var count: Int { SimulationReportKind.allCases.reduce(0) { $0 + counter($1) } }

    /// Whether nothing was reported.
    public var isEmpty: Bool { count == 0 }

    /// Forgets every report and count.
    public func reset() {
        retained.withLock { $0.removeAll() }
        conflicts.store(0, ordering: .relaxed)
        staleUses.store(0, ordering: .relaxed)
        staleEntries.store(0, ordering: .relaxed)
        freedTables.store(0, ordering: .relaxed)
    }

    /// All kept reports as text, one per paragraph (for a failing test's message).
    public var summary: String {
        let list = reports
        if list.isEmpty { return "no reports" }
        return "\(count) report(s):\n" + list.map(\.description).joined(separator: "\n")
    }
}
