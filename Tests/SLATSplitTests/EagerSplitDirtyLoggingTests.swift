import SLATArm64
import SLATCore
import SLATSim
import SLATSplit
import SLATx86
import Testing

@Suite("Eager split on enabling dirty logging and on clearing it")
struct EagerSplitDirtyLoggingTests {
    func logging(_ vm: EPTSplitVM, policy: EagerSplitPolicy = EagerSplitPolicy())
        -> EagerSplitDirtyLogging<EPTSplitVM.MMU, PerSlotReaderWriterLock> {
        EagerSplitDirtyLogging(backend: vm.mmu, lock: vm.mmu.lock, guestMemory: vm.guestMemory, policy: policy,
                               splitReaderSlot: vm.splitContext.readerSlot)
    }

    @Test("EPT: enabling splits every huge leaf first; the write pass after it allocates no table page")
    func eptEnableSplitsThenWritesAllocateNothing() throws {
        let vm = try EPTSplitVM()
        try vm.faultInAll()
        let report = try logging(vm).enableDirtyLogging(memslot: EPTSplitVM.slotID)
        #expect(report?.leavesSplit == 16)
        #expect(vm.leaves.allSatisfy { $0.size == 4096 })
        let free = vm.memory.freePageCount
        let tables = try vm.mmu.table().reachableTablePages().count
        for frame in stride(from: UInt64(0), to: vm.frameCount, by: 3) { try vm.access(frame, .write, vcpu: 0) }
        #expect(vm.memory.freePageCount == free)
        #expect(try vm.mmu.table().reachableTablePages().count == tables)
    }

    @Test("EPT: with eager splitting switched off the huge leaves stay and the write pass splits each by a fault")
    func eptSwitchedOffLeavesSplittingToFaults() throws {
        let vm = try EPTSplitVM()
        try vm.faultInAll()
        let dirtyLogging = logging(vm)
        dirtyLogging.isEagerSplitEnabled = false
        #expect(try dirtyLogging.enableDirtyLogging(memslot: EPTSplitVM.slotID) == nil)
        #expect(vm.leaves.count == 16)
        let tables = try vm.mmu.table().reachableTablePages().count
        for frame in stride(from: UInt64(0), to: vm.frameCount, by: 512) { try vm.access(frame, .write, vcpu: 0) }
        #expect(try vm.mmu.table().reachableTablePages().count == tables + 16)
        #expect(vm.leaves.allSatisfy { $0.size == 4096 })
    }

    @Test("EPT: every write after enabling is in the dirty bitmap", arguments: [true, false])
    func eptWritesAreLogged(accessedDirty: Bool) throws {
        let vm = try EPTSplitVM(accessedDirty: accessedDirty)
        try vm.faultInAll()
        try logging(vm).enableDirtyLogging(memslot: EPTSplitVM.slotID)
        let written = Set(stride(from: UInt64(1), to: vm.frameCount, by: 37))
        for frame in written { try vm.access(frame, .write, vcpu: 0) }
        let logged = Set(markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: EPTSplitVM.slotID)))
        #expect(logged == written)
        #expect(vm.detectorReports().isEmpty, "\(vm.log.summary)")
    }

    @Test("clear-dirty-log splits just the range being cleared when enabling deferred the split")
    func clearSplitsOnlyItsRange() throws {
        let vm = try EPTSplitVM()
        try vm.faultInAll()
        let dirtyLogging = logging(vm)
        #expect(try dirtyLogging.enableDirtyLogging(memslot: EPTSplitVM.slotID, splitOnClear: true) == nil)
        #expect(vm.leaves.count == 16)
        let cleared = GuestFrameRange(start: GuestFrameNumber(vm.baseFrame + 512), count: 1024)
        let report = try dirtyLogging.splitForDirtyLogClear(memslot: EPTSplitVM.slotID, frames: cleared)
        #expect(report?.leavesSplit == 2)
        let huge = vm.leaves.filter { $0.size == 2 << 20 }.map(\.guestAddress)
        let untouched: [UInt64] = [0] + Array(3..<16)
        let expected: [GuestPhysicalAddress] = untouched.map { vm.address($0 * 512) }
        #expect(huge == expected)
    }

    @Test("clear-dirty-log on a memslot that does not log is refused")
    func clearRequiresLogging() throws {
        let vm = try EPTSplitVM(frames: 512)
        #expect(throws: SLATError.dirtyLoggingNotEnabled(slot: EPTSplitVM.slotID)) {
            try logging(vm).splitForDirtyLogClear(memslot: EPTSplitVM.slotID, frames: vm.frames)
        }
        #expect(throws: SLATError.unknownMemslot(slot: 9)) { try logging(vm).enableDirtyLogging(memslot: 9) }
    }

    @Test("stage 2: enabling splits every block and write-protects; write faults then relax pages in place without allocating")
    func stageTwoEnableSplitsAndProtects() throws {
        let vm = try StageTwoSplitVM()
        try vm.faultInAll()
        let dirtyLogging = EagerSplitDirtyLogging(backend: vm.mmu, lock: vm.lock, guestMemory: vm.guestMemory,
                                                  splitReaderSlot: vm.splitContext.readerSlot)
        let report = try dirtyLogging.enableDirtyLogging(memslot: 1)
        #expect(report?.leavesSplit == 16)
        #expect(vm.leaves.allSatisfy { $0.size == 4096 && !$0.attributes.permissions.contains(.write) })
        let free = vm.memory.freePageCount
        let written = vm.guestRange.start.advanced(by: 5 << 20)
        let violations = try vm.access(written, .write, vcpu: 0)
        #expect(violations.map(\.kind) == [.permission])
        #expect(vm.memory.freePageCount == free)
        #expect(vm.mmu.table.translate(written).translation?.attributes.permissions.contains(.write) == true)
        #expect(vm.detectorReports().isEmpty, "\(vm.log.summary)")
    }

    @Test("stage 2: every write after enabling is in the dirty bitmap, reads are not, with the split on or off",
          arguments: [true, false])
    func stageTwoWritesAreLogged(eager: Bool) throws {
        let vm = try StageTwoSplitVM()
        try vm.faultInAll()
        let dirtyLogging = EagerSplitDirtyLogging(backend: vm.mmu, lock: vm.lock, guestMemory: vm.guestMemory,
                                                  policy: EagerSplitPolicy(isEnabled: eager),
                                                  splitReaderSlot: vm.splitContext.readerSlot)
        try dirtyLogging.enableDirtyLogging(memslot: 1)
        let pages = vm.guestRange.size >> 12
        let written = Set(stride(from: UInt64(1), to: pages, by: 37))
        for page in stride(from: UInt64(0), to: pages, by: 1) where page % 5 == 0 && !written.contains(page) {
            try vm.access(vm.guestRange.start.advanced(by: page << 12), .read, vcpu: 0)
        }
        for page in written { try vm.access(vm.guestRange.start.advanced(by: page << 12), .write, vcpu: 0) }
        let words = try vm.mmu.getAndClearDirtyLog(memslot: 1, lock: vm.lock, context: vm.splitContext)
        #expect(Set(markedFrames(words)) == written)
        #expect(vm.detectorReports().isEmpty, "\(vm.log.summary)")
    }
}
