import Foundation
import SLATCore
import SLATSim
import Synchronization
import Testing
@testable import SLATx86

/// Every TDP MMU operation at once, on real threads, judged by oracles:
/// dirty-log completeness (a write made after logging was enabled is in a
/// harvest that began after it), notifier coherence (an access that starts
/// after a host remap returned never reaches the old host page), the TLB
/// detectors, and page accounting (every table page reachable or freed
/// exactly once).
@Suite("TDP MMU: interaction stress")
struct TDPMMUInteractionStressTests {
    /// The logged memslot is the SimulatedVM's own (2 MiB host pages, so
    /// faults map huge leaves, recovery collapses them and the NX policy
    /// splits them); a second memslot is remapped page by page, removed and
    /// added again.
    static let remapSlot: UInt32 = 2
    static let remapBaseFrame: UInt64 = 0x20_0000
    static let remapPages: UInt64 = 64
    static let remapHostBase = HostVirtualAddress(0x7e00_0000_0000)
    /// Host frame of remap-slot page `page` at version `version`.
    static func remapFrame(page: UInt64, version: UInt64) -> UInt64 { 0x80_0000 + version * remapPages + page }

    @Test("faults, fast faults, zaps, notifier remaps, recovery, root invalidation, memslot changes and dirty logging at once",
          arguments: [(DirtyLogMode.dirtyBit, HostMappingSize.size2M), (.writeProtect, .size2M), (.dirtyBit, .size4K)])
    func everythingAtOnce(mode: DirtyLogMode, hostSize: HostMappingSize) throws {
        // 2 MiB host pages exercise huge leaves, splits and recovery; 4 KiB
        // ones leave many small leaves mapped between logging sessions, for
        // zaps to meet while an enable runs in their yields.
        let vm = try SimulatedVM(
            frames: 2048, hostSize: hostSize, vcpus: 2,
            configuration: MMUConfiguration(nxHugePages: true, yieldInterval: 8), arenaPages: 8192)
        let mmu = vm.mmu
        // vCPUs walk the root they loaded: check cached entries against it.
        let format = vm.format
        let memory = vm.memory
        vm.tlb.attachPerRoot { root in HardwareWalker(format: format, memory: memory, root: root) }
        let freeAtStart = vm.memory.freePageCount
        try vm.guestMemory.hostPages.map(Self.remapHostBase, to: HostFrameNumber(Self.remapFrame(page: 0, version: 0)),
                                         size: .size4K, count: Self.remapPages)
        let remapSlot = Memslot(id: Self.remapSlot, baseFrame: GuestFrameNumber(Self.remapBaseFrame),
                                pageCount: Self.remapPages, hostAddress: Self.remapHostBase)
        try vm.guestMemory.addMemslot(remapSlot)
        let loggedSlot = try #require(vm.guestMemory.memslot(id: SimulatedVM.slotID))

        let shared = StressState(remapPages: Int(Self.remapPages))
        let writes = WriteLog()
        let sessions = SessionLog()
        let deadline = Date().addingTimeInterval(3)

        try runThreads(4, limit: 240) { thread in
            switch thread {
            case 0, 1:
                try Self.vcpuLoop(vm: vm, vcpu: thread, shared: shared, writes: writes)
            case 2:
                defer { shared.stop.store(true, ordering: .releasing) }
                var round: UInt64 = 0
                while Date() < deadline {
                    round += 1
                    try Self.hostRound(vm: vm, round: round, shared: shared, remapSlot: remapSlot, loggedSlot: loggedSlot)
                }
            default:
                while !shared.stop.load(ordering: .acquiring) {
                    try Self.loggingSession(vm: vm, mode: mode, shared: shared, sessions: sessions)
                }
            }
        }

        #expect(shared.stale.load(ordering: .relaxed) == 0, "accesses reached a host page after its remap returned")
        let missing = sessions.missingWrites(writes.all)
        #expect(missing.isEmpty, "\(missing.count) writes after enable missing from every later harvest, e.g. \(missing.prefix(4))")
        // Quiescent: every vCPU enters with the current roots.
        for vcpu in 0..<2 where try mmu.isRootReloadRequested(vm.contexts[vcpu]) {
            try vm.reloadRoots(vcpu: vcpu)
            vm.tlb.vcpu(vcpu).invalidateAll()
        }
        vm.tlb.attachPerRoot { root in HardwareWalker(format: format, memory: memory, root: root) }
        #expect(vm.detectorReports().isEmpty)
        try mmu.zapInvalidatedRoots()
        #expect(writes.all.count > 100, "the vCPUs made progress")
        mmu.teardown()
        mmu.reclaimer.synchronize()
        // The emptied root stays with the MMU object; the vCPUs' page caches
        // hold what they topped up.
        let cached = vm.contexts.reduce(0) { $0 + $1.cachedPageCount }
        #expect(vm.memory.freePageCount + cached == freeAtStart, "table pages leaked or freed twice")
    }

    /// A vCPU: its own walker on the root it loaded (reloaded when asked,
    /// its TLB flushed then), random reads, writes and fetches over both
    /// memslots, every write of the logged slot recorded with the clock.
    static func vcpuLoop(
        vm: SimulatedVM, vcpu: Int, shared: StressState, writes: WriteLog
    ) throws {
        let mmu = vm.mmu
        let context = vm.contexts[vcpu]
        let tlb = vm.tlb.vcpu(vcpu)
        var walker = HardwareWalker(format: vm.format, memory: vm.memory, root: try mmu.reloadRoot(context).rootAddress)
        var random = SimulationRandom(seed: UInt64(vcpu) &+ 77)
        var done = 0
        while !shared.stop.load(ordering: .acquiring) || done < 200 {
            done += 1
            let remap = random.next() % 4 == 0
            let page = remap ? random.next() % remapPages : random.next() % vm.frameCount
            let address = remap ? GuestPhysicalAddress((remapBaseFrame + page) << 12) : vm.address(page)
            let roll = random.next() % 16
            let kind: AccessKind = roll < 7 ? .write : roll < 15 ? .read : .executePrivileged
            let version = remap ? shared.version(of: page) : 0
            let started = shared.clock.load(ordering: .acquiring)
            var output: HostPhysicalAddress?
            attempts: for attempt in 0..<100_000 {
                if attempt > 0 && attempt % 64 == 0 { sched_yield() }
                if try mmu.isRootReloadRequested(context) {
                    walker = HardwareWalker(format: vm.format, memory: vm.memory,
                                            root: try mmu.reloadRoot(context).rootAddress)
                    tlb.invalidateAll()
                }
                switch walker.access(address, kind, through: tlb) {
                case .translated(let out, _):
                    output = out
                    break attempts
                case .violation(let violation):
                    let fault = GuestPageFault(address: address, access: SimulatedVM.guestAccess(kind),
                                               isPermissionFault: violation.kind == .permission)
                    do {
                        _ = try mmu.handleFault(fault, vcpu: context)
                    } catch .noMemslot, .hostAddressNotMapped {
                        break attempts  // the memslot is being removed: MMIO for now
                    }
                }
            }
            guard let output else { continue }
            if remap {
                let got = (output.rawValue >> 12 &- 0x80_0000) / remapPages
                if got < version { shared.stale.wrappingAdd(1, ordering: .relaxed) }
            } else if kind == .write {
                writes.add(page: page, started: started,
                           finished: shared.clock.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue)
            }
        }
    }

    /// The host side: remaps of the second memslot (notifier), zaps, NX and
    /// huge-page recovery, aging, root invalidation and lazy root teardown,
    /// and, every few rounds, the second memslot removed and added again.
    static func hostRound(vm: SimulatedVM, round: UInt64, shared: StressState, remapSlot: Memslot, loggedSlot: Memslot) throws {
        let mmu = vm.mmu
        let page = round % remapPages
        let version = shared.version(of: page) + 1
        try vm.guestMemory.hostPages.remap(
            HostVirtualRange(start: remapHostBase.advanced(by: page << 12), size: 4096),
            to: HostFrameNumber(remapFrame(page: page, version: version)))
        shared.publish(version, of: page)
        switch round % 8 {
        case 0 where round % 32 == 0:
            // The whole logged slot: long enough to yield to enables and harvests.
            try mmu.zap(vm.frames)
        case 0: try mmu.zap(GuestFrameRange(start: GuestFrameNumber(vm.baseFrame + (round * 37) % vm.frameCount), count: 64))
        case 1: try mmu.recoverNXHugePages()
        case 2: try mmu.recoverHugePages(in: vm.frames)
        case 3:
            try mmu.clearYoung(HostVirtualRange(start: SimulatedVM.hostBase, size: vm.frameCount << 12), context: vm.contexts[2])
        case 4:
            try mmu.invalidateAllRoots()
        case 5: try mmu.zapInvalidatedRoots()
        case 6 where round % 32 == 6:
            _ = try vm.guestMemory.removeMemslot(id: remapSlot.id)
            try vm.guestMemory.addMemslot(remapSlot)
        case 7 where round % 128 == 7:
            // The logged memslot goes and comes back under the same id: its
            // log goes with it (a session that meets the gap is abandoned),
            // and the next enable must protect the new memslot.
            _ = try vm.guestMemory.removeMemslot(id: loggedSlot.id)
            try vm.guestMemory.addMemslot(loggedSlot)
        default: break
        }
    }

    /// One dirty-log session on the logged memslot: enable, three harvests,
    /// disable (with huge-page recovery). Records when the enable returned
    /// and when each harvest began.
    static func loggingSession(vm: SimulatedVM, mode: DirtyLogMode, shared: StressState, sessions: SessionLog) throws {
        let mmu = vm.mmu
        // A gap between sessions: zaps and faults run with no log at all.
        usleep(500)
        do {
            try mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: mode)
        } catch .unknownMemslot {
            return  // removed for a moment by the host thread
        }
        // Read-modify-writes of the clock order the enable before every
        // write that starts from a later value, and every write that
        // finished at an earlier value before the harvest.
        let enabled = shared.clock.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue
        var harvests: [(began: UInt64, pages: Set<UInt64>)] = []
        for _ in 0..<3 {
            usleep(2000)
            let began = shared.clock.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue
            guard let words = try? mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID) else {
                // The memslot was removed, and its log with it.
                _ = try? mmu.disableDirtyLogging(memslot: SimulatedVM.slotID)
                return
            }
            harvests.append((began, Set(markedFrames(words))))
        }
        do {
            try mmu.disableDirtyLogging(memslot: SimulatedVM.slotID)
        } catch .dirtyLoggingNotEnabled, .unknownMemslot {
            // Removed after the last harvest: the harvests stand.
        }
        sessions.add(enabled: enabled, harvests: harvests)
    }
}

/// What the stress threads share: a clock ticked after every recorded
/// write, the stop flag, the stale-access count and the published version
/// of each remapped page.
// @unchecked Sendable: Atomics, and `versions` only touched under `lock`.
final class StressState: @unchecked Sendable {
    let clock = Atomic<UInt64>(1)
    let stop = Atomic<Bool>(false)
    let stale = Atomic<Int>(0)
    private let lock = SpinLock()
    private var versions: [UInt64]
    init(remapPages: Int) { versions = Array(repeating: 0, count: remapPages) }
    func version(of page: UInt64) -> UInt64 { lock.withLock { versions[Int(page)] } }
    func publish(_ version: UInt64, of page: UInt64) { lock.withLock { versions[Int(page)] = version } }
}

/// The writes of the vCPUs: page, the clock read before the write started
/// and the clock value its completion produced.
// @unchecked Sendable: `entries` is only touched under `lock`.
final class WriteLog: @unchecked Sendable {
    typealias Write = (page: UInt64, started: UInt64, finished: UInt64)
    private let lock = SpinLock()
    private var entries: [Write] = []
    func add(page: UInt64, started: UInt64, finished: UInt64) { lock.withLock { entries.append((page, started, finished)) } }
    var all: [Write] { lock.withLock { entries } }
}

/// The dirty-log sessions: when the enable returned and what each harvest
/// reported, with the clock when it began.
// @unchecked Sendable: `sessions` is only touched under `lock`.
final class SessionLog: @unchecked Sendable {
    private let lock = SpinLock()
    private var sessions: [(enabled: UInt64, harvests: [(began: UInt64, pages: Set<UInt64>)])] = []
    func add(enabled: UInt64, harvests: [(began: UInt64, pages: Set<UInt64>)]) {
        lock.withLock { sessions.append((enabled, harvests)) }
    }

    /// Writes that started after a session's enable returned and finished
    /// before its last harvest began, yet are in none of its harvests.
    func missingWrites(_ writes: [WriteLog.Write]) -> [WriteLog.Write] {
        let sessions = lock.withLock { self.sessions }
        var missing: [WriteLog.Write] = []
        for session in sessions {
            guard let last = session.harvests.last else { continue }
            let reported = session.harvests.reduce(into: Set<UInt64>()) { $0.formUnion($1.pages) }
            for write in writes where write.started >= session.enabled && write.finished < last.began {
                if !reported.contains(write.page) { missing.append(write) }
            }
        }
        return missing
    }
}
