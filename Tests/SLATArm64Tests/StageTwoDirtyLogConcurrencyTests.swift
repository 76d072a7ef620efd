import Foundation
import SLATArm64
import SLATCore
import SLATSim
import Synchronization
import Testing

/// The parts of a stage-2 test VM that vCPU and harvester threads share.
// @unchecked Sendable: the MMU, fault handler, lock, guest memory and
// walker are Sendable; thread i uses only vCPU i's simulated TLB and
// context (the harvester its own context), and the test reads the VM again
// only after every thread has been joined.
final class SharedStageTwoVM: @unchecked Sendable {
    let vm: StageTwoTestVM<SimulatedContextTLB>
    init(_ vm: StageTwoTestVM<SimulatedContextTLB>) { self.vm = vm }
}

@Suite("Stage-2 dirty log concurrency")
struct StageTwoDirtyLogConcurrencyTests {
    @Test("vCPUs write while get-and-clear harvests run: every write is reported by a harvest that began after the one before it returned")
    func writesRacingHarvestsAreNeverLost() throws {
        let vcpus = 2
        let vm = try StageTwoTestVM(granule: .size4KiB, vcpus: vcpus + 1, guestBase: 0x1_0000_0000, size: 4 << 20,
                                    hostBase: 0x20_0000_0000, hostMappingSize: .size2M, tablePages: 128)
        let pageCount: UInt64 = (4 << 20) >> 12
        // Blocks first, so enabling splits them by write faults under the harvests.
        for block: UInt64 in [0, 1] { try vm.access(vm.guestRange.start.advanced(by: block << 21), .write) }
        try vm.mmu.enableDirtyLogging(memslot: 1, guestMemory: vm.guestMemory, lock: vm.lock, context: vm.contexts[vcpus])
        let shared = SharedStageTwoVM(vm)
        let completedHarvests = Atomic<Int>(0)
        let harvests = Mutex<[Set<UInt64>]>([])
        let writes = Mutex<[(frame: UInt64, harvestsBefore: Int)]>([])
        let errors = Mutex<[String]>([])
        let firstFrame = vm.guestRange.start.frame.rawValue

        let work: @Sendable (Int) -> Void = { thread in
                let vm = shared.vm
                do {
                    if thread == vcpus {
                        for _ in 0..<40 {
                            let words = try vm.mmu.getAndClearDirtyLog(memslot: 1, lock: vm.lock, context: vm.contexts[vcpus])
                            var frames: Set<UInt64> = []
                            for (index, word) in words.enumerated() {
                                for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 {
                                    frames.insert(firstFrame + UInt64(index * 64 + bit))
                                }
                            }
                            harvests.withLock { $0.append(frames) }
                            completedHarvests.wrappingAdd(1, ordering: .sequentiallyConsistent)
                            sched_yield()
                        }
                        return
                    }
                    var random = SimulationRandom(seed: SimulationRandom.derivedSeed(21, stream: thread))
                    var mine: [(frame: UInt64, harvestsBefore: Int)] = []
                    for _ in 0..<1500 {
                        let index = random.below(pageCount)
                        let before = completedHarvests.load(ordering: .sequentiallyConsistent)
                        try vm.access(vm.guestRange.start.advanced(by: index << 12), .write, vcpu: thread)
                        mine.append((firstFrame + index, before))
                    }
                    writes.withLock { $0.append(contentsOf: mine) }
                } catch {
                    errors.withLock { $0.append("thread \(thread): \(error)") }
                }
        }
        let done = DispatchGroup()
        for thread in 0...vcpus {
            done.enter()
            Thread.detachNewThread { work(thread); done.leave() }
        }
        #expect(done.wait(timeout: .now() + 120) == .success, "threads did not finish")
        #expect(errors.withLock { $0 } == [])

        // The final harvest after every thread stopped.
        let last = try vm.mmu.getAndClearDirtyLog(memslot: 1, lock: vm.lock, context: vm.contexts[vcpus])
        var finalFrames: Set<UInt64> = []
        for (index, word) in last.enumerated() {
            for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 { finalFrames.insert(firstFrame + UInt64(index * 64 + bit)) }
        }
        let all = harvests.withLock { $0 } + [finalFrames]
        let lost = writes.withLock { $0 }.filter { write in
            !all[write.harvestsBefore...].contains { $0.contains(write.frame) }
        }
        #expect(lost.isEmpty, "writes missing from every later harvest: \(lost.prefix(5))")
        #expect(vm.leaves.allSatisfy { $0.level == 0 || !$0.attributes.permissions.contains(.write) })
        #expect(vm.reportsAfterCoherenceCheck() == [])
    }

    /// The host thread's operation between two vCPU write passes.
    enum HostStep: Sendable, CustomTestStringConvertible {
        case harvestAndZap, manualClear
        var testDescription: String { self == .harvestAndZap ? "get-and-clear and zap" : "get and clear (manual protection)" }
    }

    @Test("vCPUs write pages through the fast permission fault while the host harvests, clears and zaps: no write is lost",
          arguments: [HostStep.harvestAndZap, .manualClear])
    func fastFaultsRacingHarvestClearAndZap(_ step: HostStep) throws {
        let vcpus = 2
        let vm = try StageTwoTestVM(granule: .size4KiB, vcpus: vcpus + 1, guestBase: 0x1_0000_0000, size: 1 << 20,
                                    hostBase: 0x20_0000_0000, hostMappingSize: .size4K, tablePages: 64)
        let pageCount: UInt64 = (1 << 20) >> 12
        // Every page a 4 KiB leaf before logging starts: writes after the
        // enable are permission faults on MMU-writable leaves.
        for page in 0..<pageCount { try vm.access(vm.guestRange.start.advanced(by: page << 12), .write) }
        let manual = step == .manualClear
        try vm.mmu.enableDirtyLogging(memslot: 1, guestMemory: vm.guestMemory, lock: vm.lock, context: vm.contexts[vcpus],
                                      protection: manual ? .manual(initiallySet: false) : .onHarvest)
        let shared = SharedStageTwoVM(vm)
        let completed = Atomic<Int>(0)
        let reports = Mutex<[Set<UInt64>]>([])
        let writes = Mutex<[(frame: UInt64, reportsBefore: Int)]>([])
        let errors = Mutex<[String]>([])
        let firstFrame = vm.guestRange.start.frame.rawValue
        @Sendable func frames(_ words: [UInt64]) -> Set<UInt64> {
            var frames: Set<UInt64> = []
            for (index, word) in words.enumerated() {
                for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 { frames.insert(firstFrame + UInt64(index * 64 + bit)) }
            }
            return frames
        }
        let work: @Sendable (Int) -> Void = { thread in
            let vm = shared.vm
            do {
                if thread == vcpus {
                    let host = vm.contexts[vcpus]
                    for round in 0..<60 {
                        let words: [UInt64]
                        if manual {
                            words = try vm.mmu.getDirtyLog(memslot: 1)
                            try vm.mmu.clearDirtyLog(memslot: 1, firstPage: 0, bitmap: words, lock: vm.lock, context: host)
                        } else {
                            words = try vm.mmu.getAndClearDirtyLog(memslot: 1, lock: vm.lock, context: host)
                            if round % 4 == 3 {
                                // A notifier-style zap of a few pages: they fault in again.
                                let start = GuestFrameNumber(firstFrame + UInt64(round % 32) * 8)
                                vm.lock.withExclusive { vm.mmu.zap(GuestFrameRange(start: start, count: 8), context: host) }
                            }
                        }
                        reports.withLock { $0.append(frames(words)) }
                        completed.wrappingAdd(1, ordering: .sequentiallyConsistent)
                    }
                    return
                }
                var random = SimulationRandom(seed: SimulationRandom.derivedSeed(33, stream: thread))
                var mine: [(frame: UInt64, reportsBefore: Int)] = []
                for _ in 0..<3000 {
                    let index = random.below(pageCount)
                    let before = completed.load(ordering: .sequentiallyConsistent)
                    try vm.access(vm.guestRange.start.advanced(by: index << 12), .write, vcpu: thread)
                    mine.append((firstFrame + index, before))
                }
                writes.withLock { $0.append(contentsOf: mine) }
            } catch {
                errors.withLock { $0.append("thread \(thread): \(error)") }
            }
        }
        let done = DispatchGroup()
        for thread in 0...vcpus {
            done.enter()
            Thread.detachNewThread { work(thread); done.leave() }
        }
        #expect(done.wait(timeout: .now() + 120) == .success, "threads did not finish")
        #expect(errors.withLock { $0 } == [])
        let last = manual ? try vm.mmu.getDirtyLog(memslot: 1)
            : try vm.mmu.getAndClearDirtyLog(memslot: 1, lock: vm.lock, context: vm.contexts[vcpus])
        let all = reports.withLock { $0 } + [frames(last)]
        // A write is reported by a report taken after the last one that had
        // returned before it started (with manual protection the final read
        // reports every write since the clear of its page).
        let lost = writes.withLock { $0 }.filter { write in
            !all[write.reportsBefore...].contains { $0.contains(write.frame) }
        }
        #expect(lost.isEmpty, "writes missing from every later report: \(lost.prefix(5))")
        #expect(vm.reportsAfterCoherenceCheck() == [])
    }
}
