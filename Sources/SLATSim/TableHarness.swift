import SLATCore

/// A complete simulated machine for differential tests of SLATCore's
/// `PageTable` operations: tables in a watched `TableArena`, a
/// ``SimulatedContextTLB``, the ``HardwareWalker`` attached, and a
/// ``ReferenceModel`` kept in step. ``apply(_:)`` runs one
/// ``TableOperation``; `check()` declares a quiescent point and compares.
///
/// Single-threaded (it owns a `PageTableContext`); every operation runs in
/// exclusive mode and settles its batch through the simulated TLB.
/// Backends with their own operations write a harness like this one (see
/// `Docs/simulation.md`) and reuse the generator and shrinker.
public final class TableHarness<Format: PageTableFormat> {
    /// The format.
    public let format: Format
    /// The detectors' reports.
    public let log: SimulationLog
    /// The vCPU TLBs.
    public let tlb: SimulatedContextTLB
    /// The watched table memory.
    public let memory: SimulatedTableMemory<TableArena>
    /// The tables under test.
    public let table: PageTable<Format, SimulatedTableMemory<TableArena>>
    /// The simulated CPU.
    public let walker: HardwareWalker<Format, SimulatedTableMemory<TableArena>>
    /// The context operations run with.
    public let context = PageTableContext()
    /// Where `check()` compares tables and model.
    public let window: GuestPhysicalRange
    /// What the tables should hold.
    public private(set) var model: ReferenceModel
    /// Operations the tables rejected with an error (the model is then unchanged).
    public private(set) var rejected = 0
    /// Fault injection: operations for which this returns `true` settle
    /// their batch without flushing (a deliberately lost flush).
    public var dropsFlush: ((TableOperation) -> Bool)?

    private final class NoFlush: TLB {
        func invalidate(address: GuestPhysicalAddress, level: LeafLevel?) {}
        func invalidate(range: GuestPhysicalRange) {}
        func invalidateAll() {}
    }
    private let noFlush = NoFlush()

    /// A fresh machine.
    ///
    /// - Throws: table-memory errors from building the arena or the root.
    public init(format: Format, window: GuestPhysicalRange, vcpuCount: Int = 2, tablePages: Int = 1024,
                profile: HardwareProfile? = nil, log: SimulationLog = SimulationLog()) throws(SLATError) {
        self.format = format
        self.window = window
        self.log = log
        self.tlb = SimulatedContextTLB(format: format, vcpuCount: vcpuCount, log: log)
        self.memory = SimulatedTableMemory(
            wrapping: try TableArena(pageSize: format.tablePageSize, pageCount: tablePages, prefault: false), watching: [tlb])
        self.table = try PageTable(format: format, memory: memory)
        self.walker = HardwareWalker(table: table, profile: profile)
        self.model = ReferenceModel(format: format)
        tlb.attach(walker)
    }

    /// Runs `operation` on the tables (and, if they accept it, on the model).
    /// Accesses go through the walker; their faults are not errors.
    public func apply(_ operation: TableOperation) {
        var batch = TLBFlushBatch()
        do {
            switch operation {
            case .map(let range, let output, let permissions, let level):
                try table.map(range, to: output, attributes: LeafAttributes(permissions: permissions), maximumLevel: level,
                              context: context, batch: &batch, tlb: tlb)
            case .split(let range, let output, let permissions, let level):
                try table.map(range, to: output, attributes: LeafAttributes(permissions: permissions), maximumLevel: level,
                              context: context, batch: &batch, tlb: tlb)
            case .merge(let range, let output, let permissions):
                try table.map(range, to: output, attributes: LeafAttributes(permissions: permissions),
                              context: context, batch: &batch, tlb: tlb)
            case .unmap(let range):
                try table.unmap(range, context: context, batch: &batch, tlb: tlb)
            case .protect(let range, let grant, let revoke):
                try table.changePermissions(range, grant: grant, revoke: revoke, context: context, batch: &batch, tlb: tlb)
            case .invalidate(let range?):
                tlb.invalidate(range: range)
            case .invalidate(nil):
                tlb.invalidateAll()
            case .access(let address, let kind, let vcpu):
                _ = walker.access(address, kind, through: tlb.vcpu(vcpu % tlb.vcpus.count))
            }
            OperationGenerator<Format>.apply(operation, to: &model, format: format)
        } catch {
            rejected += 1
        }
        if dropsFlush?(operation) == true {
            table.settle(batch, tlb: noFlush, mode: .exclusive)
        } else {
            table.settle(batch, tlb: tlb, mode: .exclusive)
        }
    }

    /// Declares a quiescent point and checks everything: the TLB coherence
    /// check, every detector report so far, and the tables against the model
    /// over `range` (default: the whole ``window``). Returns `nil` when all
    /// hold, else what failed.
    public func check(_ range: GuestPhysicalRange? = nil) -> String? {
        tlb.verifyCoherence()
        if !log.isEmpty { return log.summary }
        let compared = range.flatMap { $0.intersection(window) } ?? window
        let mismatches = model.differences(from: table, in: compared, limit: 4)
        if !mismatches.isEmpty { return "tables differ from the model:\n" + mismatches.map { "    \($0)" }.joined(separator: "\n") }
        return nil
    }

    /// A property for ``OperationShrinker``: replays `operations` on a fresh
    /// harness (configured by `configure`), checking after every one — the
    /// TLBs and detectors fully, the model over the operation's range, and
    /// over the whole window every `fullCheckInterval` operations and at the end.
    public static func replay(
        _ operations: [TableOperation], format: Format, window: GuestPhysicalRange, vcpuCount: Int = 2,
        tablePages: Int = 1024, fullCheckInterval: Int = 16, configure: (TableHarness) -> Void = { _ in }
    ) -> String? {
        let harness: TableHarness
        do {
            harness = try TableHarness(format: format, window: window, vcpuCount: vcpuCount, tablePages: tablePages)
        } catch {
            return "could not build the harness: \(error)"
        }
        configure(harness)
        for (index, operation) in operations.enumerated() {
            harness.apply(operation)
            let full = index == operations.count - 1 || (index + 1) % max(1, fullCheckInterval) == 0
            let range: GuestPhysicalRange? = full ? nil : (operation.range.map {
                GuestPhysicalRange(start: $0.start.alignedDown(to: format.pageSize), size: max($0.size, format.pageSize))
            })
            if let problem = harness.check(range) { return "after operation \(index) (\(operation)): \(problem)" }
        }
        return nil
    }
}
