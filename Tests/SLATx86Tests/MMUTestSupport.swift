import Foundation
import SLATCore
import SLATSim
import Synchronization
@testable import SLATx86

/// A simulated VM around an ``ExtendedPageTableMMU``: one memslot at guest
/// frame `baseFrame` backed by host pages of `hostSize` (host frame =
/// `hostFrameBase + slot offset`), SLATSim TLBs (one per vCPU) with the
/// detectors attached, a hardware walker and one context per vCPU.
final class SimulatedVM: @unchecked Sendable {
    // @unchecked Sendable: immutable after init except `walker`, which tests
    // replace only while no vCPU thread runs; each thread uses its own context.
    typealias MMU = ExtendedPageTableMMU<SimulatedTableMemory<TableArena>, SimulatedContextTLB>
    let format: ExtendedPageTableFormat
    let guestMemory = GuestMemory()
    let log = SimulationLog()
    let tlb: SimulatedContextTLB
    let memory: SimulatedTableMemory<TableArena>
    let mmu: MMU
    var walker: HardwareWalker<ExtendedPageTableFormat, SimulatedTableMemory<TableArena>>
    let contexts: [PageTableContext]
    let baseFrame: UInt64 = 0x10_0000
    let frameCount: UInt64
    let hostFrameBase: UInt64 = 0x40_0000
    static let hostBase = HostVirtualAddress(0x7f00_0000_0000)
    static let slotID: UInt32 = 1

    init(
        frames: UInt64 = 4096, hostSize: HostMappingSize = .size4K, vcpus: Int = 2, accessedDirty: Bool = true,
        modeBasedExecute: Bool = false,
        configuration: MMUConfiguration = MMUConfiguration(), arenaPages: Int = 4096, slotFlags: MemslotFlags = []
    ) throws {
        format = try ExtendedPageTableFormat(levelCount: 4, modeBasedExecute: modeBasedExecute,
                                             accessedDirtyEnabled: accessedDirty)
        frameCount = frames
        try guestMemory.hostPages.map(Self.hostBase, to: HostFrameNumber(hostFrameBase), size: hostSize,
                                      count: (frames << 12) >> hostSize.shift)
        try guestMemory.addMemslot(Memslot(id: Self.slotID, baseFrame: GuestFrameNumber(baseFrame), pageCount: frames,
                                           hostAddress: Self.hostBase, flags: slotFlags))
        tlb = SimulatedContextTLB(format: format, vcpuCount: vcpus, log: log)
        memory = SimulatedTableMemory(wrapping: try TableArena(pageCount: arenaPages, prefault: false), watching: [tlb])
        var configuration = configuration
        configuration.readerSlots = max(configuration.readerSlots, vcpus + 2)
        mmu = try MMU(format: format, memory: memory, tlb: tlb, guestMemory: guestMemory, configuration: configuration)
        walker = HardwareWalker(format: format, memory: memory, root: try mmu.root())
        tlb.attach(walker)
        contexts = (0..<(vcpus + 2)).map { PageTableContext(readerSlot: $0) }
    }

    deinit { mmu.teardown() }

    /// Guest address of frame `index` of the memslot.
    func address(_ index: UInt64) -> GuestPhysicalAddress { GuestPhysicalAddress((baseFrame + index) << 12) }
    /// The host-physical address frame `index` is backed by (initial host map).
    func hostAddress(_ index: UInt64) -> HostPhysicalAddress { HostPhysicalAddress((hostFrameBase + index) << 12) }
    /// The memslot's guest frames.
    var frames: GuestFrameRange { GuestFrameRange(start: GuestFrameNumber(baseFrame), count: frameCount) }

    /// vCPU `vcpu` performs `kind` at frame `index` (+ `offset` bytes): the
    /// hardware walker through its TLB, calling the fault handler on every
    /// violation until the access translates. Returns the output address.
    @discardableResult
    func access(_ index: UInt64, _ kind: AccessKind, vcpu: Int, offset: UInt64 = 0) throws -> HostPhysicalAddress {
        let address = address(index).advanced(by: offset)
        for attempt in 0..<100_000 {
            // A storm of invalidations makes faults retry; let them end.
            if attempt > 0 && attempt % 64 == 0 { sched_yield() }
            // The VMM's check before VM entry (single-threaded tests only
            // replace roots: the walker is shared).
            if try mmu.isRootReloadRequested(contexts[vcpu]) { try reloadRoots(vcpu: vcpu) }
            switch walker.access(address, kind, through: tlb.vcpu(vcpu)) {
            case .translated(let output, _):
                return output
            case .violation(let violation):
                let fault = GuestPageFault(
                    address: address, access: Self.guestAccess(kind),
                    isPermissionFault: violation.kind == .permission)
                _ = try mmu.handleFault(fault, vcpu: contexts[vcpu])
            }
        }
        throw SimulatedVMError.noProgress(address)
    }

    /// vCPU `vcpu` reloads its EPTP (``ExtendedPageTableMMU/reloadRoot(_:addressSpace:)``)
    /// and the walker follows the new root.
    func reloadRoots(vcpu: Int) throws {
        let pointer = try mmu.reloadRoot(contexts[vcpu])
        walker = HardwareWalker(format: format, memory: memory, root: pointer.rootAddress)
        tlb.attach(walker)
    }

    static func guestAccess(_ kind: AccessKind) -> GuestAccess {
        switch kind {
        case .read: .read
        case .write: .write
        case .executePrivileged: .execute
        case .executeUser: .userExecute
        }
    }

    /// The leaf mapping frame `index` now: raw entry and level.
    func leaf(_ index: UInt64) -> (entry: UInt64, level: Int)? {
        guard let table = try? mmu.table(), case .mapped(let translation) = table.translate(address(index)) else { return nil }
        return (translation.entry, translation.level)
    }

    /// The verdict of the TLB detectors at a quiescent point.
    func detectorReports() -> [SimulationReport] {
        tlb.verifyCoherence()
        return log.reports
    }

    /// Frames of the slot whose present leaf does not map the expected host
    /// page (`expected(index)`), up to 8.
    func wrongTranslations(expected: (UInt64) -> HostPhysicalAddress?) -> [UInt64] {
        var wrong: [UInt64] = []
        guard let table = try? mmu.table() else { return [] }
        for index in 0..<frameCount {
            if case .mapped(let translation) = table.translate(address(index)) {
                if translation.output != expected(index) { wrong.append(index) }
            }
            if wrong.count >= 8 { break }
        }
        return wrong
    }
}

enum SimulatedVMError: Error {
    case noProgress(GuestPhysicalAddress)
}

/// Runs `body(thread)` on `count` new threads that start together, waits
/// for all (stopping the process after `limit` seconds: a livelock), and
/// rethrows the first error a thread threw.
func runThreads(_ count: Int, limit: Int = 120, _ body: @escaping @Sendable (Int) throws -> Void) throws {
    let arrived = ArrivalCounter()
    let errors = ErrorBox()
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            arrived.arriveAndWait(parties: count)
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

/// A one-shot start barrier.
final class ArrivalCounter: Sendable {
    private let arrived = Atomic<Int>(0)
    func arriveAndWait(parties: Int) {
        arrived.wrappingAdd(1, ordering: .acquiringAndReleasing)
        while arrived.load(ordering: .acquiring) < parties { sched_yield() }
    }
}

// The test helpers below lock with SLATCore's SpinLock (atomics) rather than
// Synchronization.Mutex: ThreadSanitizer sees the atomics' ordering, while
// it reports false races through the Linux Mutex's futex.

/// The first error any test thread threw.
// @unchecked Sendable: `stored` is only touched under `lock`.
final class ErrorBox: @unchecked Sendable {
    private let lock = SpinLock()
    private var stored: (any Error)?
    func add(_ error: any Error) { lock.withLock { if stored == nil { stored = error } } }
    var first: (any Error)? { lock.withLock { stored } }
}

/// A set of frames many threads add to.
// @unchecked Sendable: `frames` is only touched under `lock`.
final class FrameSet: @unchecked Sendable {
    private let lock = SpinLock()
    private var frames = Set<UInt64>()
    func insert(_ frame: UInt64) { lock.withLock { _ = frames.insert(frame) } }
    func insert(contentsOf other: [UInt64]) { lock.withLock { frames.formUnion(other) } }
    var all: Set<UInt64> { lock.withLock { frames } }
}

/// The frame indices (relative to the slot) set in a dirty-log result.
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
