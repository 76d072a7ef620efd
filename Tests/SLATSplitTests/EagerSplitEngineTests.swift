import SLATArm64
import SLATCore
import SLATSim
import SLATSplit
import SLATx86
import Testing

@Suite("Eager split engine: what a split leaves behind")
struct EagerSplitEngineTests {
    @Test("EPT: every 2M leaf of the range becomes 512 4K leaves with the same translations")
    func eptTwoMegabyteLeavesSplitToPages() throws {
        let vm = try EPTSplitVM()
        try vm.faultInAll()
        #expect(vm.leaves.count == 16 && vm.leaves.allSatisfy { $0.size == 2 << 20 })
        let model = vm.model()
        let report = try vm.engine().split(frames: vm.frames, context: vm.splitContext)
        #expect(report.leavesSplit == 16)
        #expect(report.tablePagesLinked == 16)
        #expect(vm.leaves.count == 16 * 512 && vm.leaves.allSatisfy { $0.size == 4096 })
        #expect(try model.differences(from: vm.mmu.table()).isEmpty)
    }

    @Test("EPT: a 1G leaf splits to 4K one level at a time (1 + 512 splits, 513 table pages)")
    func eptGigabyteLeafSplitsToPages() throws {
        let vm = try EPTSplitVM(frames: 1 << 18, hostSize: .size1G, arenaPages: 1024)
        try vm.faultInAll(stride: 1 << 18)
        #expect(vm.leaves.map(\.size) == [1 << 30])
        let model = vm.model()
        let report = try vm.engine().split(frames: vm.frames, context: vm.splitContext)
        #expect(report.leavesSplit == 513)
        #expect(report.tablePagesLinked == 513)
        #expect(vm.leaves.count == 1 << 18)
        #expect(try model.differences(from: vm.mmu.table()).isEmpty)
    }

    @Test("EPT with two address spaces (SMM): the huge leaves of both roots are split")
    func eptSplitsEveryAddressSpace() throws {
        let vm = try EPTSplitVM(frames: 2048, addressSpaces: 2)
        for space in 0..<2 {
            for frame in stride(from: UInt64(0), to: 2048, by: 512) {
                let fault = GuestPageFault(address: vm.address(frame), access: .write, addressSpace: space)
                _ = try vm.mmu.handleFault(fault, vcpu: vm.contexts[0])
            }
        }
        let events = EventLog()
        let report = try vm.engine().split(frames: vm.frames, context: vm.splitContext, observer: events.record)
        #expect(report.leavesSplit == 8)
        let spaces = events.all.compactMap { if case .split(let space, _, _) = $0 { space } else { nil } }
        #expect(spaces == [0, 0, 0, 0, 1, 1, 1, 1])
        for space in 0..<2 {
            #expect(try vm.mmu.table(addressSpace: space).leaves(in: vm.frames.physicalRange).allSatisfy { $0.size == 4096 })
        }
    }

    @Test("EPT: a target level of 1 splits a 1G leaf into 2M leaves only")
    func eptTargetLevelStopsAtTwoMegabytes() throws {
        let vm = try EPTSplitVM(frames: 1 << 18, hostSize: .size1G, arenaPages: 64)
        try vm.faultInAll(stride: 1 << 18)
        let report = try vm.engine(EagerSplitPolicy(targetLevel: 1)).split(frames: vm.frames, context: vm.splitContext)
        #expect(report.leavesSplit == 1)
        #expect(vm.leaves.count == 512 && vm.leaves.allSatisfy { $0.size == 2 << 20 })
    }

    @Test("EPT: the small leaves keep the huge leaf's permissions, memory type, accessed/dirty and software bits")
    func eptSplitKeepsAttributes() throws {
        let vm = try EPTSplitVM(frames: 512)
        try vm.access(0, .write, vcpu: 0)
        let huge = try #require(vm.leaves.first)
        try vm.engine().split(frames: vm.frames, context: vm.splitContext)
        let small = vm.leaves
        #expect(small.count == 512)
        #expect(small.allSatisfy { $0.attributes == huge.attributes })
        #expect(small.enumerated().allSatisfy { $1.output == huge.output.advanced(by: UInt64($0) * 4096) })
    }

    @Test("EPT: leaves already at the target level are left alone and nothing is allocated for them")
    func eptSmallLeavesAreNotTouched() throws {
        let vm = try EPTSplitVM(frames: 1024, hostSize: .size4K)
        for frame in stride(from: UInt64(0), to: 1024, by: 7) { try vm.access(frame, .read, vcpu: 0) }
        let before = vm.leaves
        let report = try vm.engine().split(frames: vm.frames, context: vm.splitContext)
        #expect(report.leavesSplit == 0)
        #expect(vm.leaves == before)
    }

    @Test("stage 2: every 2M block becomes 4K pages with the same translations")
    func stageTwoBlocksSplitToPages() throws {
        let vm = try StageTwoSplitVM()
        try vm.faultInAll()
        #expect(vm.leaves.count == 16 && vm.leaves.allSatisfy { $0.size == 2 << 20 })
        let model = vm.model()
        let report = try vm.engine().split(frames: vm.frames, context: vm.splitContext)
        #expect(report.leavesSplit == 16)
        #expect(vm.leaves.count == 16 * 512 && vm.leaves.allSatisfy { $0.size == 4096 })
        #expect(model.differences(from: vm.mmu.table).isEmpty)
        #expect(vm.detectorReports().isEmpty, "\(vm.log.summary)")
    }

    @Test("stage 2: a 1G block is replaced by one fully populated subtree (513 pages, one split)")
    func stageTwoGigabyteBlockSplitsInOneSubtree() throws {
        let vm = try StageTwoSplitVM(size: 1 << 30, hostMappingSize: .size1G, tablePages: 1024)
        try vm.access(vm.guestRange.start, .write, vcpu: 0)
        #expect(vm.leaves.map(\.size) == [1 << 30])
        let model = vm.model()
        let report = try vm.engine(EagerSplitPolicy(cacheCapacity: 8)).split(frames: vm.frames, context: vm.splitContext)
        #expect(report.leavesSplit == 1)
        #expect(report.tablePagesLinked == 513)
        #expect(report.refills == 1, "the 8-page cache is refilled to the 513 pages the block needs")
        #expect(vm.leaves.count == 1 << 18)
        #expect(model.differences(from: vm.mmu.table).isEmpty)
    }

    @Test("bad input is refused before any change: empty or misaligned range, target level without leaves, reader slot")
    func badInputIsRefused() throws {
        let vm = try EPTSplitVM(frames: 512)
        try vm.access(0, .write, vcpu: 0)
        let before = vm.leaves
        let engine = vm.engine()
        #expect(throws: SLATError.emptyRange) {
            try engine.split(frames: GuestFrameRange(start: GuestFrameNumber(vm.baseFrame), count: 0), context: vm.splitContext)
        }
        #expect(throws: SLATError.self) {
            try engine.split(GuestPhysicalRange(start: vm.address(0).advanced(by: 8), size: 4096), context: vm.splitContext)
        }
        #expect(throws: SLATError.unsupportedLevel(3)) {
            try vm.engine(EagerSplitPolicy(targetLevel: 3)).split(frames: vm.frames, context: vm.splitContext)
        }
        #expect(throws: SLATError.readerSlotOutOfRange(99, slots: 4)) {
            try engine.split(frames: vm.frames, context: PageTableContext(readerSlot: 99))
        }
        #expect(vm.leaves == before)
    }
}
