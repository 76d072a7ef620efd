import Foundation
import SLATArm64
import SLATCore
import SLATSim
import SLATSplit
import SLATx86
import Testing

/// Real threads (SLATSim vCPUs through the hardware walker and their TLBs)
/// run while the engine splits under them. Named for the CI TSan filter.
@Suite("Eager split concurrency (SLATSim threads)")
struct EagerSplitConcurrencyTests {
    @Test("EPT: vCPUs write while enabling dirty logging splits under them: no access misses a translation, model equal, detectors clean, every later write logged",
          arguments: [UInt64(1), 2])
    func eptWritesDuringEnable(seed: UInt64) throws {
        let vcpus = 2
        let vm = try EPTSplitVM(vcpus: vcpus)
        try vm.faultInAll()
        let model = vm.model()
        let dirtyLogging = EagerSplitDirtyLogging(
            backend: vm.mmu, lock: vm.mmu.lock, guestMemory: vm.guestMemory,
            policy: EagerSplitPolicy(cacheCapacity: 2, yieldInterval: 3), splitReaderSlot: vm.splitContext.readerSlot)
        let enabled = Flag()
        let holes = Counter()
        let accesses = Counter()
        let mustBeLogged = FrameSet()
        try runThreads(vcpus + 1) { thread in
            if thread == vcpus {
                while accesses.value < 50 { sched_yield() }
                let report = try dirtyLogging.enableDirtyLogging(memslot: EPTSplitVM.slotID)
                #expect(report?.leavesSplit == 16)
                enabled.set()
                return
            }
            var random = SimulationRandom(seed: SimulationRandom.derivedSeed(seed, stream: thread))
            var logged: [UInt64] = []
            var count = 0
            while count < 400 || !enabled.isSet {
                let after = enabled.isSet
                let frame = random.below(vm.frameCount)
                let write = random.chance(60)
                let violations = try vm.access(frame, write ? .write : .read, vcpu: thread)
                if violations.contains(where: { $0.kind == .notPresent }) { holes.increment() }
                if write && after { logged.append(frame) }
                count += 1
                accesses.increment()
            }
            mustBeLogged.insert(contentsOf: logged)
        }
        #expect(holes.value == 0, "accesses that met no translation")
        #expect(vm.leaves.allSatisfy { $0.size == 4096 })
        #expect(try model.differences(from: vm.mmu.table()).isEmpty)
        let logged = Set(markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: EPTSplitVM.slotID)))
        #expect(mustBeLogged.all.subtracting(logged).isEmpty)
        #expect(vm.detectorReports().isEmpty, "\(vm.log.summary)")
    }

    @Test("EPT: fast page faults race the engine on write-protected huge leaves: every exchange lost is retried, translations correct")
    func eptFastFaultsRaceSplit() throws {
        let vcpus = 2
        let vm = try EPTSplitVM(vcpus: vcpus, accessedDirty: false)
        try vm.faultInAll()
        // Write-protect without splitting: the engine then splits leaves
        // that vCPUs are restoring at the same time.
        let off = EagerSplitDirtyLogging(backend: vm.mmu, lock: vm.mmu.lock, guestMemory: vm.guestMemory,
                                         policy: EagerSplitPolicy(isEnabled: false),
                                         splitReaderSlot: vm.splitContext.readerSlot)
        try off.enableDirtyLogging(memslot: EPTSplitVM.slotID)
        let written = FrameSet()
        try runThreads(vcpus + 1) { thread in
            if thread == vcpus {
                try vm.engine(EagerSplitPolicy(cacheCapacity: 1, yieldInterval: 2))
                    .split(frames: vm.frames, context: vm.splitContext)
                return
            }
            var random = SimulationRandom(seed: SimulationRandom.derivedSeed(5, stream: thread))
            var mine: [UInt64] = []
            for _ in 0..<300 {
                let frame = random.below(vm.frameCount)
                try vm.access(frame, .write, vcpu: thread)
                mine.append(frame)
            }
            written.insert(contentsOf: mine)
        }
        for leaf in vm.leaves {
            let index = (leaf.guestAddress.rawValue >> 12) - vm.baseFrame
            #expect(leaf.output == vm.hostAddress(index))
        }
        let logged = Set(markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: EPTSplitVM.slotID)))
        #expect(written.all.subtracting(logged).isEmpty)
        #expect(vm.detectorReports().isEmpty, "\(vm.log.summary)")
    }

    @Test("EPT: notifier-style zaps race the split: what is left maps the right host pages, detectors clean")
    func eptZapsRaceSplit() throws {
        let vcpus = 1
        let vm = try EPTSplitVM(vcpus: vcpus)
        try vm.faultInAll()
        try runThreads(vcpus + 2) { thread in
            switch thread {
            case vcpus:
                try vm.engine(EagerSplitPolicy(cacheCapacity: 2, yieldInterval: 1))
                    .split(frames: vm.frames, context: vm.splitContext)
            case vcpus + 1:
                var random = SimulationRandom(seed: 11)
                for _ in 0..<12 {
                    let first = random.below(vm.frameCount - 600)
                    try vm.mmu.zap(GuestFrameRange(start: GuestFrameNumber(vm.baseFrame + first), count: 600))
                }
            default:
                var random = SimulationRandom(seed: SimulationRandom.derivedSeed(3, stream: thread))
                for _ in 0..<300 { try vm.access(random.below(vm.frameCount), .read, vcpu: thread) }
            }
        }
        for leaf in vm.leaves {
            let index = (leaf.guestAddress.rawValue >> 12) - vm.baseFrame
            #expect(leaf.output == vm.hostAddress(index))
        }
        #expect(vm.detectorReports().isEmpty, "\(vm.log.summary)")
    }

    @Test("stage 2: vCPUs write while enabling dirty logging splits under them: every page split to its own output, detectors clean, every later write logged",
          arguments: [UInt64(1), 2])
    func stageTwoWritesDuringEnable(seed: UInt64) throws {
        let vcpus = 2
        let vm = try StageTwoSplitVM(vcpus: vcpus)
        try vm.faultInAll()
        let dirtyLogging = EagerSplitDirtyLogging(
            backend: vm.mmu, lock: vm.lock, guestMemory: vm.guestMemory,
            policy: EagerSplitPolicy(cacheCapacity: 2, yieldInterval: 3), splitReaderSlot: vm.splitContext.readerSlot)
        let enabled = Flag()
        let accesses = Counter()
        let mustBeLogged = FrameSet()
        let pages = vm.guestRange.size >> 12
        try runThreads(vcpus + 1) { thread in
            if thread == vcpus {
                while accesses.value < 50 { sched_yield() }
                let report = try dirtyLogging.enableDirtyLogging(memslot: 1)
                #expect(report?.leavesSplit == 16)
                enabled.set()
                return
            }
            var random = SimulationRandom(seed: SimulationRandom.derivedSeed(seed, stream: thread))
            var logged: [UInt64] = []
            var count = 0
            while count < 400 || !enabled.isSet {
                let after = enabled.isSet
                let page = random.below(pages)
                let write = random.chance(60)
                // Block -> table needs break-before-make on Arm: a vCPU in
                // that window takes a translation fault the handler retries
                // on the locked entry (see the break-before-make test below).
                try vm.access(vm.guestRange.start.advanced(by: page << 12), write ? .write : .read, vcpu: thread)
                if write && after { logged.append(page) }
                count += 1
                accesses.increment()
            }
            mustBeLogged.insert(contentsOf: logged)
        }
        let leaves = vm.leaves
        #expect(leaves.count == Int(pages) && leaves.allSatisfy { $0.size == 4096 })
        #expect(leaves.allSatisfy {
            $0.output == vm.hostBase.advanced(by: $0.guestAddress.rawValue - vm.guestRange.start.rawValue)
        })
        let words = try vm.mmu.getAndClearDirtyLog(memslot: 1, lock: vm.lock, context: vm.splitContext)
        #expect(mustBeLogged.all.subtracting(markedFrames(words)).isEmpty)
        #expect(vm.detectorReports().isEmpty, "\(vm.log.summary)")
    }

    @Test("stage 2: vCPUs read and write while the engine splits by break-before-make: every access completes, model equal, detectors clean")
    func stageTwoAccessesDuringSplit() throws {
        let vcpus = 2
        let vm = try StageTwoSplitVM(vcpus: vcpus)
        try vm.faultInAll()
        let model = vm.model()
        // As when dirty logging starts: a vCPU that faults on a block broken
        // for the split must map a page, not merge the split table back into
        // a block (which a fault on an unlogged memslot may rightly do).
        try vm.guestMemory.updateMemslotFlags(id: 1, to: .dirtyLogging)
        let accesses = Counter()
        try runThreads(vcpus + 1) { thread in
            if thread == vcpus {
                while accesses.value < 50 { sched_yield() }
                let report = try vm.engine(EagerSplitPolicy(cacheCapacity: 1, yieldInterval: 2))
                    .split(frames: vm.frames, context: vm.splitContext)
                #expect(report.leavesSplit == 16)
                return
            }
            var random = SimulationRandom(seed: SimulationRandom.derivedSeed(9, stream: thread))
            for _ in 0..<400 {
                let address = vm.guestRange.start.advanced(by: random.below(vm.guestRange.size >> 12) << 12)
                try vm.access(address, random.chance(50) ? .write : .read, vcpu: thread)
                accesses.increment()
            }
        }
        #expect(vm.leaves.allSatisfy { $0.size == 4096 })
        #expect(model.differences(from: vm.mmu.table).isEmpty)
        #expect(vm.detectorReports().isEmpty, "\(vm.log.summary)")
    }

    @Test("stage 2: zaps under the exclusive lock race the split: what is left maps the right host pages, detectors clean")
    func stageTwoZapsRaceSplit() throws {
        let vm = try StageTwoSplitVM(vcpus: 1)
        try vm.faultInAll()
        try runThreads(3) { thread in
            switch thread {
            case 0:
                try vm.engine(EagerSplitPolicy(cacheCapacity: 1, yieldInterval: 1))
                    .split(frames: vm.frames, context: vm.splitContext)
            case 1:
                var random = SimulationRandom(seed: 13)
                let zapContext = vm.contexts[1]
                for _ in 0..<12 {
                    let first = random.below((vm.guestRange.size >> 12) - 600)
                    let frames = GuestFrameRange(start: GuestFrameNumber(vm.frames.start.rawValue + first), count: 600)
                    vm.lock.withExclusive { vm.mmu.zap(frames, context: zapContext) }
                }
            default:
                var random = SimulationRandom(seed: 17)
                for _ in 0..<300 {
                    let address = vm.guestRange.start.advanced(by: random.below(vm.guestRange.size >> 12) << 12)
                    try vm.access(address, .read, vcpu: 0)
                }
            }
        }
        for leaf in vm.leaves {
            #expect(leaf.output == vm.hostBase.advanced(by: leaf.guestAddress.rawValue - vm.guestRange.start.rawValue))
        }
        #expect(vm.detectorReports().isEmpty, "\(vm.log.summary)")
    }
}
