import Foundation
import SLATArm64
import SLATCore
import SLATSim
import SLATSplit
import SLATx86
import Synchronization

/// A simulated x86 VM for the split tests: one memslot of `frames` 4 KiB
/// frames at guest frame `baseFrame` backed by host pages of `hostSize`,
/// SLATSim TLBs (detectors on) with the hardware walker, the TDP MMU, and
/// contexts for the vCPUs plus two spare (the split context uses the last).
final class EPTSplitVM: @unchecked Sendable {
    // @unchecked Sendable: immutable after init; each thread uses its own context.
    /// Attempts before an access counts as stuck. A fault that meets an
    /// invalidation in flight (enabling dirty logging) returns retry at
    /// once, as a vCPU re-enters the guest; after a few attempts the thread
    /// yields so the invalidating thread can finish on 2 CPUs.
    static let maximumAttempts = 100_000
    typealias MMU = ExtendedPageTableMMU<SimulatedTableMemory<TableArena>, SimulatedContextTLB>
    let format: ExtendedPageTableFormat
    let guestMemory = GuestMemory()
    let log = SimulationLog()
    let tlb: SimulatedContextTLB
    let arena: TableArena
    let memory: SimulatedTableMemory<TableArena>
    let mmu: MMU
    let walker: HardwareWalker<ExtendedPageTableFormat, SimulatedTableMemory<TableArena>>
    let contexts: [PageTableContext]
    let baseFrame: UInt64
    let frameCount: UInt64
    let hostFrameBase: UInt64 = 0x40_0000
    static let hostBase = HostVirtualAddress(0x7f00_0000_0000)
    static let slotID: UInt32 = 1

    init(frames: UInt64 = 8192, hostSize: HostMappingSize = .size2M, vcpus: Int = 2, baseFrame: UInt64 = 0x10_0000,
         arenaPages: Int = 2048, accessedDirty: Bool = true, addressSpaces: Int = 1) throws {
        format = try ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: accessedDirty)
        frameCount = frames
        self.baseFrame = baseFrame
        try guestMemory.hostPages.map(Self.hostBase, to: HostFrameNumber(hostFrameBase), size: hostSize,
                                      count: (frames << 12) >> hostSize.shift)
        try guestMemory.addMemslot(Memslot(id: Self.slotID, baseFrame: GuestFrameNumber(baseFrame), pageCount: frames,
                                           hostAddress: Self.hostBase))
        tlb = SimulatedContextTLB(format: format, vcpuCount: vcpus, log: log)
        arena = try TableArena(pageCount: arenaPages, prefault: false)
        memory = SimulatedTableMemory(wrapping: arena, watching: [tlb])
        mmu = try MMU(format: format, memory: memory, tlb: tlb, guestMemory: guestMemory,
                      configuration: MMUConfiguration(addressSpaceCount: addressSpaces, readerSlots: vcpus + 2))
        walker = HardwareWalker(format: format, memory: memory, root: try mmu.root())
        tlb.attach(walker)
        contexts = (0..<(vcpus + 2)).map { PageTableContext(readerSlot: $0) }
    }

    deinit { mmu.teardown() }

    var splitContext: PageTableContext { contexts[contexts.count - 1] }
    var frames: GuestFrameRange { GuestFrameRange(start: GuestFrameNumber(baseFrame), count: frameCount) }
    func address(_ index: UInt64) -> GuestPhysicalAddress { GuestPhysicalAddress((baseFrame + index) << 12) }
    func hostAddress(_ index: UInt64) -> HostPhysicalAddress { HostPhysicalAddress((hostFrameBase + index) << 12) }

    func engine(_ policy: EagerSplitPolicy = EagerSplitPolicy()) -> EagerSplitEngine<MMU, PerSlotReaderWriterLock> {
        EagerSplitEngine(backend: mmu, lock: mmu.lock, policy: policy)
    }

    /// One access of `vcpu` to completion; returns the violations it met.
    @discardableResult
    func access(_ index: UInt64, _ kind: AccessKind, vcpu: Int) throws -> [Violation] {
        let address = address(index)
        var seen: [Violation] = []
        for attempt in 0..<Self.maximumAttempts {
            if attempt >= 8 { sched_yield() }
            switch walker.access(address, kind, through: tlb.vcpu(vcpu)) {
            case .translated: return seen
            case .violation(let violation):
                seen.append(violation)
                let access: GuestAccess = kind == .write ? .write : kind == .read ? .read : .execute
                _ = try mmu.handleFault(GuestPageFault(address: address, access: access,
                                                       isPermissionFault: violation.kind == .permission),
                                        vcpu: contexts[vcpu])
            }
        }
        throw SplitTestError.noProgress(address)
    }

    /// Maps the whole slot with reads (huge leaves where the host allows).
    func faultInAll(stride: UInt64 = 512) throws {
        var frame: UInt64 = 0
        while frame < frameCount {
            try access(frame, .write, vcpu: 0)
            frame += stride
        }
    }

    /// The slot's leaves.
    var leaves: [LeafMapping] { (try? mmu.table().leaves(in: frames.physicalRange)) ?? [] }

    /// A reference model of the slot as mapped now.
    func model() -> ReferenceModel { referenceModel(of: leaves, format: format) }

    func detectorReports() -> [SimulationReport] {
        tlb.verifyCoherence()
        return log.reports
    }
}

/// A simulated arm64 VM (4 KiB granule) with the stage-2 tables, the MMU
/// lock, the fault handler and the notifier binding.
final class StageTwoSplitVM: @unchecked Sendable {
    // @unchecked Sendable: immutable after init; each thread uses its own context.
    /// Attempts before an access counts as stuck. A fault that meets an
    /// invalidation in flight (enabling dirty logging) returns retry at
    /// once, as a vCPU re-enters the guest; after a few attempts the thread
    /// yields so the invalidating thread can finish on 2 CPUs.
    static let maximumAttempts = 100_000
    typealias Memory = SimulatedTableMemory<TableArena>
    typealias MMU = StageTwoPageTable<Memory, SimulatedContextTLB, CountingCacheMaintenance>
    let format: StageTwoFormat
    let arena: TableArena
    let memory: Memory
    let log = SimulationLog()
    let tlb: SimulatedContextTLB
    let mmu: MMU
    let walker: HardwareWalker<StageTwoFormat, Memory>
    let guestMemory = GuestMemory()
    let lock = PThreadReaderWriterLock()
    let handler: StageTwoFaultHandler<Memory, SimulatedContextTLB, CountingCacheMaintenance, PThreadReaderWriterLock>
    let binding: StageTwoNotifierBinding<Memory, SimulatedContextTLB, CountingCacheMaintenance, PThreadReaderWriterLock>
    let contexts: [PageTableContext]
    let guestRange: GuestPhysicalRange
    let hostBase = HostPhysicalAddress(4 << 30)
    static let hostVirtualBase = HostVirtualAddress(0x7F00_0000_0000)

    init(size: UInt64 = 32 << 20, hostMappingSize: HostMappingSize = .size2M, vcpus: Int = 2,
         guestBase: UInt64 = 1 << 30, tablePages: Int = 2048) throws {
        format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40)
        arena = try TableArena(pageSize: 4096, pageCount: tablePages, prefault: false)
        tlb = SimulatedContextTLB(format: format, vcpuCount: vcpus, context: 5, log: log)
        memory = SimulatedTableMemory(wrapping: arena, watching: [tlb])
        mmu = try StageTwoPageTable(format: format, memory: memory, tlb: tlb, caches: CountingCacheMaintenance(),
                                    vmid: 5, readerSlots: vcpus + 2)
        walker = HardwareWalker(table: mmu.table)
        tlb.attach(walker)
        try guestMemory.hostPages.map(Self.hostVirtualBase, to: hostBase.frame, size: hostMappingSize,
                                      count: size >> hostMappingSize.shift)
        try guestMemory.addMemslot(Memslot(id: 1, baseFrame: GuestPhysicalAddress(guestBase).frame,
                                           pageCount: size >> 12, hostAddress: Self.hostVirtualBase))
        handler = StageTwoFaultHandler(pageTable: mmu, guestMemory: guestMemory, lock: lock)
        binding = StageTwoNotifierBinding(pageTable: mmu, guestMemory: guestMemory, lock: lock, readerSlot: vcpus)
        contexts = (0..<(vcpus + 2)).map { PageTableContext(readerSlot: $0) }
        guestRange = GuestPhysicalRange(start: GuestPhysicalAddress(guestBase), size: size)
    }

    var splitContext: PageTableContext { contexts[contexts.count - 1] }
    var frames: GuestFrameRange { GuestFrameRange(covering: guestRange) }

    func engine(_ policy: EagerSplitPolicy = EagerSplitPolicy()) -> EagerSplitEngine<MMU, PThreadReaderWriterLock> {
        EagerSplitEngine(backend: mmu, lock: lock, policy: policy)
    }

    /// One access of `vcpu` to completion; returns the violations it met.
    @discardableResult
    func access(_ address: GuestPhysicalAddress, _ kind: AccessKind, vcpu: Int) throws -> [Violation] {
        var seen: [Violation] = []
        for attempt in 0..<Self.maximumAttempts {
            if attempt >= 8 { sched_yield() }
            switch walker.access(address, kind, through: tlb.vcpu(vcpu)) {
            case .translated: return seen
            case .violation(let violation):
                seen.append(violation)
                let access: StageTwoAccess = kind == .write ? .write : kind == .read ? .read : .execute
                _ = try handler.handle(StageTwoFault(address: address, access: access), context: contexts[vcpu])
            }
        }
        throw SplitTestError.noProgress(address)
    }

    func faultInAll() throws {
        var address = guestRange.start
        while address < guestRange.end {
            try access(address, .write, vcpu: 0)
            address = address.advanced(by: 2 << 20)
        }
    }

    var leaves: [LeafMapping] { mmu.table.leaves(in: guestRange) }

    func model() -> ReferenceModel { referenceModel(of: leaves, format: format) }

    func detectorReports() -> [SimulationReport] {
        tlb.verifyCoherence()
        return log.reports
    }
}

/// A reference model holding exactly `leaves`.
func referenceModel<Format: PageTableFormat>(of leaves: [LeafMapping], format: Format) -> ReferenceModel {
    var model = ReferenceModel(format: format)
    for leaf in leaves {
        model.map(GuestPhysicalRange(start: leaf.guestAddress, size: leaf.size), to: leaf.output,
                  permissions: leaf.attributes.permissions)
    }
    return model
}

enum SplitTestError: Error {
    case noProgress(GuestPhysicalAddress)
}

/// Collects engine events from the engine's thread (and reads them after).
final class EventLog: @unchecked Sendable {
    // @unchecked Sendable: a Mutex-protected array.
    private let events = Mutex<[EagerSplitEvent]>([])
    func record(_ event: EagerSplitEvent) { events.withLock { $0.append(event) } }
    var all: [EagerSplitEvent] { events.withLock { $0 } }
    var splitAddresses: [GuestPhysicalAddress] {
        all.compactMap { if case .split(_, let address, _) = $0 { address } else { nil } }
    }
}

/// Runs `body(thread)` on `count` threads that start together and waits;
/// rethrows the first error.
func runThreads(_ count: Int, limit: Int = 120, _ body: @escaping @Sendable (Int) throws -> Void) throws {
    let arrived = Counter()
    let errors = ErrorBox()
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            arrived.increment()
            while arrived.value < count { sched_yield() }
            do { try body(index) } catch { errors.add(error) }
            group.leave()
        }
        thread.stackSize = 4 << 20
        thread.start()
    }
    if group.wait(timeout: .now() + .seconds(limit)) == .timedOut {
        fatalError("\(count) threads still running after \(limit) s: livelock")
    }
    if let first = errors.first { throw first }
}

/// A counter many threads bump.
final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    @discardableResult
    func increment() -> Int { count.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue }
    var value: Int { count.load(ordering: .acquiring) }
}

final class ErrorBox: Sendable {
    private let firstError = Mutex<(any Error)?>(nil)
    func add(_ error: any Error) { firstError.withLock { if $0 == nil { $0 = error } } }
    var first: (any Error)? { firstError.withLock { $0 } }
}

/// A flag set once.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// A set of frames many threads add to.
final class FrameSet: Sendable {
    private let frames = Mutex<Set<UInt64>>([])
    func insert(contentsOf other: [UInt64]) { frames.withLock { $0.formUnion(other) } }
    var all: Set<UInt64> { frames.withLock { $0 } }
}

/// The frame indices set in a dirty bitmap.
func markedFrames(_ words: [UInt64]) -> [UInt64] {
    var result: [UInt64] = []
    for (index, word) in words.enumerated() {
        var bits = word
        while bits != 0 {
            result.append(UInt64(index) * 64 + UInt64(bits.trailingZeroBitCount))
            bits &= bits - 1
        }
    }
    return result
}
