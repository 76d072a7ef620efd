import Foundation
import SLATCore
import SLATSim
import Synchronization
import Testing
@testable import SLATx86

/// Real threads against the MMU on SLATSim hardware: vCPUs access memory
/// through their simulated TLBs and the hardware walker and call the fault
/// handler on every violation while other threads zap, log and age. At the
/// end (quiescent) the tables are compared with the reference model / host
/// map and the TLB detectors must be clean. Named for the CI TSan filter.
@Suite("TDP MMU concurrency (SLATSim threads)")
struct TDPMMUConcurrencyTests {
    static let seeds: [UInt64] = [1, 2, 3]

    @Test("vCPUs fault overlapping 2M-backed ranges with mixed 4K/2M goals and NX huge pages; model equal, detectors clean",
          arguments: seeds)
    func mixedSizeFaultsConcurrently(seed: UInt64) throws {
        let vcpus = 4
        let vm = try SimulatedVM(frames: 2048, hostSize: .size2M, vcpus: vcpus,
                                 configuration: MMUConfiguration(nxHugePages: true))
        let executed = FrameSet()
        let touched = FrameSet()
        try runThreads(vcpus) { vcpu in
            var random = SimulationRandom(seed: SimulationRandom.derivedSeed(seed, stream: vcpu))
            for _ in 0..<400 {
                // Overlap: every vCPU works in the same two 2 MiB blocks most of the time.
                let frame = random.chance(80) ? random.below(UInt64(1024)) : random.below(UInt64(2048))
                let kind: AccessKind = random.chance(30) ? .executePrivileged : (random.chance(50) ? .write : .read)
                let output = try vm.access(frame, kind, vcpu: vcpu)
                guard output == vm.hostAddress(frame) else { throw SimulatedVMError.noProgress(vm.address(frame)) }
                touched.insert(frame)
                if kind == .executePrivileged { executed.insert(frame) }
            }
        }
        var model = ReferenceModel(format: vm.format)
        for frame in touched.all {
            model.map(GuestPhysicalRange(start: vm.address(frame), size: 4096), to: vm.hostAddress(frame), permissions: .read)
        }
        let table = try vm.mmu.table()
        for frame in touched.all {
            let translation = try #require(table.translate(vm.address(frame)).translation)
            #expect(translation.output == model.translation(of: vm.address(frame))?.output)
        }
        for frame in executed.all {
            let leaf = try #require(vm.leaf(frame))
            #expect(leaf.level == 0)
            #expect(leaf.entry & ExtendedPageTableBits.execute != 0)
        }
        #expect(vm.wrongTranslations { vm.hostAddress($0) }.isEmpty)
        #expect(vm.detectorReports().isEmpty, "\(vm.log.summary)")
        #expect(!vm.mmu.pendingNXSplits.isEmpty)
    }

    @Test("faults race notifier zaps from host remaps: every translation left is the current host page, detectors clean",
          arguments: seeds)
    func faultsRaceNotifierZaps(seed: UInt64) throws {
        let vcpus = 3
        let frames: UInt64 = 1024
        let vm = try SimulatedVM(frames: frames, vcpus: vcpus, configuration: MMUConfiguration(yieldInterval: 64))
        let finished = DoneFlag()
        try runThreads(vcpus + 1) { thread in
            var random = SimulationRandom(seed: SimulationRandom.derivedSeed(seed, stream: thread))
            if thread == vcpus {
                // The host: remap random 16-page runs to fresh frames until the vCPUs finish.
                var generation: UInt64 = 1
                while !finished.isSet {
                    let start = random.below(frames / 16) * 16
                    let range = HostVirtualRange(start: SimulatedVM.hostBase.advanced(by: start << 12), size: 16 << 12)
                    try vm.guestMemory.hostPages.remap(range, to: HostFrameNumber(0x100_0000 * (generation % 4 + 1) + start))
                    generation += 1
                    usleep(20)
                }
                return
            }
            defer { if finished.arrive() == vcpus { finished.set() } }
            for _ in 0..<500 {
                let frame = random.below(frames)
                _ = try vm.access(frame, random.chance(50) ? .write : .read, vcpu: thread)
            }
        }
        let hostPages = vm.guestMemory.hostPages
        let wrong = vm.wrongTranslations { index in
            hostPages.lookup(SimulatedVM.hostBase.advanced(by: index << 12))?.frame.address
        }
        #expect(wrong.isEmpty, "frames mapping a stale host page: \(wrong)")
        #expect(vm.detectorReports().isEmpty, "\(vm.log.summary)")
    }

    @Test("fast faults race get-and-clear of the dirty log: every write made appears in a bitmap",
          arguments: [DirtyLogMode.writeProtect, .dirtyBit])
    func fastFaultsRaceDirtyLogClears(mode: DirtyLogMode) throws {
        let vcpus = 3
        let frames: UInt64 = 512
        let vm = try SimulatedVM(frames: frames, vcpus: vcpus)
        for frame in 0..<frames { try vm.access(frame, .write, vcpu: 0) }
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: mode)
        let written = FrameSet()
        let reported = FrameSet()
        let finished = DoneFlag()
        try runThreads(vcpus + 1) { thread in
            var random = SimulationRandom(seed: SimulationRandom.derivedSeed(7, stream: thread))
            if thread == vcpus {
                while !finished.isSet {
                    reported.insert(contentsOf: markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)))
                }
                reported.insert(contentsOf: markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)))
                return
            }
            defer { if finished.arrive() == vcpus { finished.set() } }
            var mine: [UInt64] = []
            for _ in 0..<600 {
                let frame = random.below(frames)
                if random.chance(70) {
                    try vm.access(frame, .write, vcpu: thread)
                    mine.append(frame)
                } else {
                    try vm.access(frame, .read, vcpu: thread)
                }
            }
            written.insert(contentsOf: mine)
        }
        let lost = written.all.subtracting(reported.all)
        #expect(lost.isEmpty, "writes missing from every bitmap: \(lost.sorted().prefix(8))")
        #expect(vm.wrongTranslations { vm.hostAddress($0) }.isEmpty)
        #expect(vm.detectorReports().isEmpty, "\(vm.log.summary)")
    }

    @Test("aging races faults: translations correct and detectors clean, with A bits and with access tracking",
          arguments: [true, false])
    func agingRacesFaults(accessedDirty: Bool) throws {
        let vcpus = 3
        let frames: UInt64 = 512
        let vm = try SimulatedVM(frames: frames, vcpus: vcpus, accessedDirty: accessedDirty)
        let finished = DoneFlag()
        let everything = HostVirtualRange(start: SimulatedVM.hostBase, size: frames << 12)
        let youngSeen = Atomic<Int>(0)
        try runThreads(vcpus + 1) { thread in
            var random = SimulationRandom(seed: SimulationRandom.derivedSeed(11, stream: thread))
            if thread == vcpus {
                let ager = vm.contexts[vcpus]
                // At least one pass after the vCPUs are done, so it sees young leaves.
                var last = false
                repeat {
                    last = finished.isSet
                    if try vm.mmu.clearYoung(everything, context: ager) { youngSeen.wrappingAdd(1, ordering: .relaxed) }
                    _ = try vm.mmu.testYoung(everything, context: ager)
                } while !last
                return
            }
            defer { if finished.arrive() == vcpus { finished.set() } }
            for _ in 0..<600 {
                let frame = random.below(frames)
                let output = try vm.access(frame, random.chance(40) ? .write : .read, vcpu: thread)
                guard output == vm.hostAddress(frame) else { throw SimulatedVMError.noProgress(vm.address(frame)) }
            }
        }
        #expect(youngSeen.load(ordering: .relaxed) > 0)
        #expect(vm.wrongTranslations { vm.hostAddress($0) }.isEmpty)
        #expect(vm.detectorReports().isEmpty, "\(vm.log.summary)")
    }

    @Test("SLATSim's VCPURunner drives the fault handler on every vCPU while the host unmaps and remaps: no access abandoned, detectors clean")
    func vcpuRunnerWithNotifierZaps() throws {
        let vcpus = 3
        let frames: UInt64 = 1024
        let vm = try SimulatedVM(frames: frames, hostSize: .size4K, vcpus: vcpus,
                                 configuration: MMUConfiguration(nxHugePages: true, yieldInterval: 32))
        let runner = VCPURunner(walker: vm.walker, tlb: vm.tlb)
        let stream = AccessStream(range: vm.frames.physicalRange, pattern: .random,
                                  mix: AccessMix(writePercent: 40, executePercent: 10), sharing: .overlapping,
                                  accessesPerVCPU: 1500)
        let finished = DoneFlag()
        let hostDone = DoneFlag()
        let failures = ErrorBox()
        let host = Thread {
            var random = SimulationRandom(seed: 99)
            var round: UInt64 = 1
            while !finished.isSet {
                let start = random.below(frames / 8) * 8
                let range = HostVirtualRange(start: SimulatedVM.hostBase.advanced(by: start << 12), size: 8 << 12)
                do {
                    try vm.guestMemory.hostPages.remap(range, to: HostFrameNumber(0x200_0000 * (round % 3 + 1) + start))
                } catch {
                    failures.add(error)
                }
                round += 1
                usleep(50)
            }
            hostDone.set()
        }
        host.start()
        let result = runner.run(stream, seed: 2026, maximumRetries: 10_000) { vcpu, violation in
            let fault = GuestPageFault(address: violation.address, access: SimulatedVM.guestAccess(violation.access),
                                       isPermissionFault: violation.kind == .permission)
            do {
                _ = try vm.mmu.handleFault(fault, vcpu: vm.contexts[vcpu])
                return .retry
            } catch {
                failures.add(error)
                return .stop
            }
        }
        finished.set()
        while !hostDone.isSet { sched_yield() }
        #expect(failures.first == nil)
        #expect(!result.stopped)
        #expect(result.vcpus.allSatisfy { $0.abandoned == 0 && $0.accesses == 1500 })
        #expect(result.vcpus.reduce(0) { $0 + $1.faults } > 0)
        let hostPages = vm.guestMemory.hostPages
        let wrong = vm.wrongTranslations { index in hostPages.lookup(SimulatedVM.hostBase.advanced(by: index << 12))?.frame.address }
        #expect(wrong.isEmpty)
        #expect(vm.detectorReports().isEmpty, "\(vm.log.summary)")
    }

    @Test("NX recovery and dirty-log enable race faults without a lost or stale translation")
    func recoveryRacesFaults() throws {
        let vcpus = 3
        let vm = try SimulatedVM(frames: 2048, hostSize: .size2M, vcpus: vcpus,
                                 configuration: MMUConfiguration(nxHugePages: true))
        let finished = DoneFlag()
        try runThreads(vcpus + 1) { thread in
            var random = SimulationRandom(seed: SimulationRandom.derivedSeed(5, stream: thread))
            if thread == vcpus {
                var round = 0
                while !finished.isSet {
                    try vm.mmu.recoverNXHugePages()
                    if round % 4 == 1 { try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect) }
                    if round % 4 == 3 { try vm.mmu.disableDirtyLogging(memslot: SimulatedVM.slotID) }
                    round += 1
                }
                return
            }
            defer { if finished.arrive() == vcpus { finished.set() } }
            for _ in 0..<400 {
                let frame = random.below(UInt64(2048))
                let kind: AccessKind = random.chance(30) ? .executePrivileged : (random.chance(50) ? .write : .read)
                let output = try vm.access(frame, kind, vcpu: thread)
                guard output == vm.hostAddress(frame) else { throw SimulatedVMError.noProgress(vm.address(frame)) }
            }
        }
        #expect(vm.wrongTranslations { vm.hostAddress($0) }.isEmpty)
        #expect(vm.detectorReports().isEmpty, "\(vm.log.summary)")
    }
}

/// Counts finished workers and tells the others to stop.
final class DoneFlag: Sendable {
    private let arrived = Atomic<Int>(0)
    private let flag = Atomic<Bool>(false)
    func arrive() -> Int { arrived.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue }
    func set() { flag.store(true, ordering: .releasing) }
    var isSet: Bool { flag.load(ordering: .acquiring) }
}
