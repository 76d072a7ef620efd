import SLATArm64
import SLATCore
import SLATSim
import SLATx86
import Testing

// Shared helpers of the SLATSim tests: the format configurations (each
// with its hardware profile), and a small simulated machine — tables in a
// watched arena, a context of simulated TLBs and the walker — built over
// one of them.

/// Format configurations the simulator is tested over.
enum SimFormat: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case eptAccessedDirty
    case eptNoAccessedDirty
    case ept5Level
    case stageTwo4KiB
    case stageTwo4KiBHardwareAccessFlag
    case stageTwo16KiB
    case stageTwo64KiB
    case eptModeBasedExecute
    case stageTwoExecuteNeverSplit

    var testDescription: String {
        switch self {
        case .eptAccessedDirty: "EPT 4-level, A/D on"
        case .eptNoAccessedDirty: "EPT 4-level, A/D off"
        case .ept5Level: "EPT 5-level, A/D on"
        case .stageTwo4KiB: "stage 2, 4 KiB, no HA"
        case .stageTwo4KiBHardwareAccessFlag: "stage 2, 4 KiB, HA"
        case .stageTwo16KiB: "stage 2, 16 KiB, no HA"
        case .stageTwo64KiB: "stage 2, 64 KiB, HA"
        case .eptModeBasedExecute: "EPT 4-level, MBEC"
        case .stageTwoExecuteNeverSplit: "stage 2, 4 KiB, FEAT_XNX"
        }
    }

    var format: any PageTableFormat {
        switch self {
        case .eptAccessedDirty: try! ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: true)
        case .eptNoAccessedDirty: try! ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: false)
        case .ept5Level: try! ExtendedPageTableFormat(levelCount: 5, accessedDirtyEnabled: true)
        case .stageTwo4KiB: try! StageTwoFormat(granule: .size4KiB, inputAddressBits: 40)
        case .stageTwo4KiBHardwareAccessFlag: try! StageTwoFormat(granule: .size4KiB, inputAddressBits: 40, hardwareAccessFlag: true)
        case .stageTwo16KiB: try! StageTwoFormat(granule: .size16KiB, inputAddressBits: 40)
        case .stageTwo64KiB: try! StageTwoFormat(granule: .size64KiB, inputAddressBits: 42, hardwareAccessFlag: true)
        case .eptModeBasedExecute: try! ExtendedPageTableFormat(levelCount: 4, modeBasedExecute: true)
        case .stageTwoExecuteNeverSplit: try! StageTwoFormat(granule: .size4KiB, inputAddressBits: 40, executeNeverSplit: true)
        }
    }

    var isEPT: Bool { self == .eptAccessedDirty || self == .eptNoAccessedDirty || self == .ept5Level || self == .eptModeBasedExecute }
}

extension PageTableFormat {
    /// Leaf levels, smallest first.
    var leafLevels: [Int] { (0...rootLevel).filter { canHoldLeaf(atLevel: $0) } }

    /// Every permission set this format can encode.
    var encodablePermissions: [Permissions] {
        (UInt8(0)..<16).map { Permissions(rawValue: $0) }.filter { canEncode($0) }
    }
}

typealias SimMemory = SimulatedTableMemory<TableArena>

/// A small simulated machine over one format: a table in a watched arena,
/// a context of simulated TLBs, the walker attached, a reference model.
final class SimMachine<Format: PageTableFormat> {
    let format: Format
    let log: SimulationLog
    let tlb: SimulatedContextTLB
    let memory: SimMemory
    let table: PageTable<Format, SimMemory>
    let walker: HardwareWalker<Format, SimMemory>
    let context = PageTableContext()

    init(_ format: Format, vcpus: Int = 2, pages: Int = 256, profile: HardwareProfile? = nil,
         reportsConflicts: Bool? = nil, capacity: Int = 1024) throws {
        self.format = format
        log = SimulationLog()
        tlb = SimulatedContextTLB(format: format, vcpuCount: vcpus, capacity: capacity, log: log, reportsConflicts: reportsConflicts)
        memory = SimulatedTableMemory(
            wrapping: try TableArena(pageSize: format.tablePageSize, pageCount: pages, prefault: false), watching: [tlb])
        table = try PageTable(format: format, memory: memory)
        walker = HardwareWalker(table: table, profile: profile)
        tlb.attach(walker)
    }

    /// Maps and settles through the simulated TLB (or `flushTo` instead).
    func map(_ start: UInt64, size: UInt64, to output: UInt64, permissions: Permissions = .readWrite,
             accessed: Bool = true, maximumLevel: Int? = nil, flushTo other: (any TLB)? = nil) throws {
        var batch = TLBFlushBatch()
        try table.map(GuestPhysicalRange(start: GuestPhysicalAddress(start), size: size), to: HostPhysicalAddress(output),
                      attributes: LeafAttributes(permissions: permissions, accessed: accessed),
                      maximumLevel: maximumLevel, context: context, batch: &batch, tlb: tlb)
        settle(batch, flushTo: other)
    }

    func unmap(_ start: UInt64, size: UInt64, flushTo other: (any TLB)? = nil) throws {
        var batch = TLBFlushBatch()
        try table.unmap(GuestPhysicalRange(start: GuestPhysicalAddress(start), size: size), context: context, batch: &batch, tlb: tlb)
        settle(batch, flushTo: other)
    }

    func protect(_ start: UInt64, size: UInt64, grant: Permissions = [], revoke: Permissions = [],
                 flushTo other: (any TLB)? = nil) throws {
        var batch = TLBFlushBatch()
        try table.changePermissions(GuestPhysicalRange(start: GuestPhysicalAddress(start), size: size),
                                    grant: grant, revoke: revoke, context: context, batch: &batch, tlb: tlb)
        settle(batch, flushTo: other)
    }

    func settle(_ batch: consuming TLBFlushBatch, flushTo other: (any TLB)?) {
        if let other {
            settleThrough(batch, other)
        } else {
            table.settle(batch, tlb: tlb, mode: .exclusive)
        }
    }

    private func settleThrough<T: TLB>(_ batch: consuming TLBFlushBatch, _ other: T) {
        table.settle(batch, tlb: other, mode: .exclusive)
    }

    /// One access by `vcpu`.
    @discardableResult
    func access(_ address: UInt64, _ kind: AccessKind = .read, vcpu: Int = 0) -> AccessResult {
        walker.access(GuestPhysicalAddress(address), kind, through: tlb.vcpu(vcpu))
    }

    /// The raw leaf entry word for `address` and its pointer (the leaf must exist).
    func leafPointer(for address: UInt64) -> (pointer: EntryPointer, level: Int) {
        guard let leaf = walker.lookUp(GuestPhysicalAddress(address)).translation else {
            preconditionFailure("no leaf at \(address)")
        }
        let page = leaf.path[leaf.path.count - 1]
        let index = format.index(of: GuestPhysicalAddress(address), atLevel: leaf.level)
        return (memory.entries(at: page) + index, leaf.level)
    }

    func rawLeaf(_ address: UInt64) -> UInt64 {
        leafPointer(for: address).pointer.pointee.load(ordering: .relaxed)
    }
}

/// A TLB that drops everything it is asked: the "forgot to flush" bug.
final class ForgetfulTLB: TLB {
    init() {}
    func invalidate(address: GuestPhysicalAddress, level: LeafLevel?) {}
    func invalidate(range: GuestPhysicalRange) {}
    func invalidateAll() {}
}
