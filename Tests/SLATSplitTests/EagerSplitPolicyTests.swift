import SLATCore
import SLATSim
import SLATSplit
import SLATx86
import Testing

@Suite("Eager split policy: split cache, minimum free pages, chunking, yields")
struct EagerSplitPolicyTests {
    /// A VM whose 16 2M leaves are mapped.
    func mappedVM(arenaPages: Int = 2048) throws -> EPTSplitVM {
        let vm = try EPTSplitVM(arenaPages: arenaPages)
        try vm.faultInAll()
        return vm
    }

    func hugeLeafAddresses(_ vm: EPTSplitVM) -> [GuestPhysicalAddress] {
        (0..<16).map { vm.address(UInt64($0) * 512) }
    }

    @Test("a dry cache mid-range drops the lock, refills outside it and resumes at the first leaf not split: nothing split twice or skipped")
    func dryCacheResumesAtNextLeaf() throws {
        let vm = try mappedVM()
        let events = EventLog()
        let report = try vm.engine(EagerSplitPolicy(cacheCapacity: 3))
            .split(frames: vm.frames, context: vm.splitContext, observer: events.record)
        #expect(events.splitAddresses == hugeLeafAddresses(vm))
        #expect(report.refills == 5)
        let all = events.all
        var drops = 0
        for (index, event) in all.enumerated() {
            guard case .lockDropped(.cacheEmpty, let resume) = event else { continue }
            drops += 1
            let next = all[(index + 1)...].first { if case .split = $0 { true } else { false } }
            #expect(next == .split(addressSpace: 0, address: resume, level: 1))
        }
        #expect(drops == report.refills)
        #expect(vm.leaves.allSatisfy { $0.size == 4096 })
    }

    @Test("at or below the minimum-free threshold the engine refuses to start and changes nothing")
    func minimumFreeRefusal() throws {
        let vm = try mappedVM()
        let before = vm.leaves
        let free = vm.memory.freePageCount
        #expect(throws: SLATError.outOfTableMemory(needed: free + 1, available: free)) {
            try vm.engine(EagerSplitPolicy(minimumFreePages: free)).split(frames: vm.frames, context: vm.splitContext)
        }
        #expect(vm.leaves == before)
        #expect(vm.memory.freePageCount == free)
    }

    @Test("a refill that would cross the threshold stops the run; the leaves after it stay huge and correct")
    func stopsEarlyAtMinimumFree() throws {
        let vm = try mappedVM()
        let model = vm.model()
        let free = vm.memory.freePageCount
        let events = EventLog()
        let report = try vm.engine(EagerSplitPolicy(minimumFreePages: free - 5))
            .split(frames: vm.frames, context: vm.splitContext, observer: events.record)
        #expect(report.leavesSplit == 5)
        #expect(report.stoppedAt == vm.address(5 * 512))
        #expect(events.all.last == .stoppedAtMinimumFree(addressSpace: 0, address: vm.address(5 * 512)))
        #expect(vm.leaves.filter { $0.size == 2 << 20 }.map(\.guestAddress) == Array(hugeLeafAddresses(vm)[5...]))
        #expect(try model.differences(from: vm.mmu.table()).isEmpty)
        #expect(vm.memory.freePageCount == free - 5)
    }

    @Test("chunking: at most chunkSize bytes of huge leaves are split per hold of the lock")
    func chunkingLimitsEachHold() throws {
        let vm = try mappedVM()
        let events = EventLog()
        let report = try vm.engine(EagerSplitPolicy(chunkSize: 4 << 20))
            .split(frames: vm.frames, context: vm.splitContext, observer: events.record)
        var run = 0
        var longest = 0
        for event in events.all {
            switch event {
            case .split: run += 1; longest = max(longest, run)
            case .lockDropped(let reason, _): #expect(reason == .chunk); run = 0
            default: break
            }
        }
        #expect(longest == 2)
        #expect(report.yields == 7)
        #expect(events.splitAddresses == hugeLeafAddresses(vm))
    }

    @Test("the lock is yielded every yieldInterval splits and the walk resumes where it stopped")
    func yieldsEveryInterval() throws {
        let vm = try mappedVM()
        let events = EventLog()
        let report = try vm.engine(EagerSplitPolicy(yieldInterval: 4))
            .split(frames: vm.frames, context: vm.splitContext, observer: events.record)
        #expect(report.yields == 3)
        let resumes = events.all.compactMap { if case .lockDropped(.yieldInterval, let at) = $0 { at } else { nil } }
        #expect(resumes == [vm.address(4 * 512), vm.address(8 * 512), vm.address(12 * 512)])
        #expect(events.splitAddresses == hugeLeafAddresses(vm))
    }

    @Test("EPT: what the splits owe (the huge leaves' invalidations) is issued before every lock drop")
    func owedInvalidationsSettledBeforeEachDrop() throws {
        let vm = try mappedVM()
        let before = vm.tlb.counts.total
        var splitsSinceDrop = 0
        var unsettledDrops = 0
        var lastTotal = before
        let report = try vm.engine(EagerSplitPolicy(yieldInterval: 2)).split(frames: vm.frames, context: vm.splitContext) { event in
            switch event {
            case .split: splitsSinceDrop += 1
            case .lockDropped:
                let total = vm.tlb.counts.total
                if splitsSinceDrop > 0 && total == lastTotal { unsettledDrops += 1 }
                lastTotal = total
                splitsSinceDrop = 0
            default: break
            }
        }
        #expect(report.yields == 7)
        #expect(unsettledDrops == 0)
        #expect(vm.tlb.counts.total > lastTotal, "the last hold is settled before the run returns")
    }

    @Test("stage 2: each block split costs exactly its break-before-make invalidation, nothing more")
    func stageTwoSplitOwesOnlyTheBreak() throws {
        let vm = try StageTwoSplitVM()
        try vm.faultInAll()
        let before = vm.tlb.counts
        let report = try vm.engine().split(frames: vm.frames, context: vm.splitContext)
        let after = vm.tlb.counts
        #expect(report.leavesSplit == 16)
        #expect(after.addresses - before.addresses == 16)
        #expect(after.ranges == before.ranges && after.contexts == before.contexts)
    }

    @Test("the split cache goes back to the memory when the run is done")
    func cacheReleasedWhenDone() throws {
        let vm = try mappedVM()
        let free = vm.memory.freePageCount
        try vm.engine().split(frames: vm.frames, context: vm.splitContext)
        #expect(vm.splitContext.pageCache.count == 0)
        #expect(vm.memory.freePageCount == free - 16)
    }
}
