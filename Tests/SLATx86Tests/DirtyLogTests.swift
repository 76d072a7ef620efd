import SLATCore
import SLATSim
import Testing
@testable import SLATx86

@Suite("Dirty logging")
struct DirtyLogTests {
    func populated(_ count: UInt64, accessedDirty: Bool = true) throws -> SimulatedVM {
        let vm = try SimulatedVM(accessedDirty: accessedDirty)
        for index in 0..<count { try vm.access(index, .write, vcpu: 0) }
        return vm
    }

    @Test("write-protect mode: enabling removes write access but keeps MMU-writable, with the flush")
    func writeProtectModeProtects() throws {
        let vm = try populated(32)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        let entry = try #require(vm.leaf(3)).entry
        #expect(entry & ExtendedPageTableBits.write == 0)
        #expect(entry & ExtendedPageTableBits.mmuWritable != 0)
        #expect(vm.guestMemory.memslot(id: SimulatedVM.slotID)?.flags.contains(.dirtyLogging) == true)
        #expect(vm.detectorReports().isEmpty)
    }

    @Test("write-protect mode: get-and-clear reports each written page once and re-protects it")
    func writeProtectGetAndClear() throws {
        let vm = try populated(32)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        try vm.access(5, .write, vcpu: 1)
        try vm.access(9, .write, vcpu: 0)
        #expect(markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)) == [5, 9])
        #expect(try #require(vm.leaf(5)).entry & ExtendedPageTableBits.write == 0)
        #expect(markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)).isEmpty)
        try vm.access(5, .write, vcpu: 1)
        #expect(markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)) == [5])
        #expect(vm.detectorReports().isEmpty)
    }

    @Test("dirty-bit mode: hardware dirty bits are harvested, cleared and flushed")
    func dirtyBitModeHarvests() throws {
        let vm = try populated(32)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .dirtyBit)
        let entry = try #require(vm.leaf(4)).entry
        #expect(entry & ExtendedPageTableBits.write != 0)
        #expect(entry & ExtendedPageTableBits.dirty == 0)
        try vm.access(4, .write, vcpu: 0)
        try vm.access(6, .read, vcpu: 0)
        #expect(markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)) == [4])
        #expect(try #require(vm.leaf(4)).entry & ExtendedPageTableBits.dirty == 0)
        try vm.access(4, .write, vcpu: 1)
        #expect(markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)) == [4])
        #expect(vm.detectorReports().isEmpty)
    }

    @Test("dirty-bit mode, manual protection: reading harvests dirty bits into the log and clears no mark")
    func dirtyBitManualReadHarvestsAndKeepsMarks() throws {
        let vm = try populated(32)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .dirtyBit, protection: .manual(initiallySet: false))
        try vm.access(4, .write, vcpu: 0)
        #expect(markedFrames(try vm.mmu.getDirtyLog(memslot: SimulatedVM.slotID)) == [4])
        #expect(try #require(vm.leaf(4)).entry & ExtendedPageTableBits.dirty == 0)
        #expect(markedFrames(try vm.mmu.getDirtyLog(memslot: SimulatedVM.slotID)) == [4])
        #expect(vm.detectorReports().isEmpty)
    }

    @Test("dirty-bit mode, manual protection: a page written after its clear is reported again")
    func dirtyBitManualClearThenWriteReportsAgain() throws {
        let vm = try populated(32)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .dirtyBit, protection: .manual(initiallySet: false))
        try vm.access(4, .write, vcpu: 0)
        try vm.access(9, .write, vcpu: 1)
        #expect(markedFrames(try vm.mmu.getDirtyLog(memslot: SimulatedVM.slotID)) == [4, 9])
        try vm.mmu.clearDirtyLog(memslot: SimulatedVM.slotID, firstPage: 0, bitmap: [1 << 4 | 1 << 9])
        #expect(markedFrames(try vm.mmu.getDirtyLog(memslot: SimulatedVM.slotID)).isEmpty)
        try vm.access(9, .write, vcpu: 0)
        #expect(markedFrames(try vm.mmu.getDirtyLog(memslot: SimulatedVM.slotID)) == [9])
        #expect(vm.detectorReports().isEmpty)
    }

    @Test("dirty-bit mode, manual protection set initially: every page reports, no dirty bit is cleaned at enable")
    func dirtyBitInitiallySetKeepsDirtyBits() throws {
        let vm = try populated(32)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .dirtyBit, protection: .manual(initiallySet: true))
        #expect(try #require(vm.leaf(4)).entry & ExtendedPageTableBits.dirty != 0)
        let slotPages = try #require(vm.guestMemory.memslot(id: SimulatedVM.slotID)).frames.count
        #expect(markedFrames(try vm.mmu.getDirtyLog(memslot: SimulatedVM.slotID)) == Array(0..<slotPages))
        #expect(vm.detectorReports().isEmpty)
    }

    @Test("dirty-bit mode defaults when A/D flags are on, write-protect when off")
    func defaultModeFollowsAccessedDirty() throws {
        let withAD = try populated(1)
        try withAD.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID)
        #expect(withAD.mmu.dirtyLogMode(memslot: SimulatedVM.slotID) == .dirtyBit)
        let withoutAD = try populated(1, accessedDirty: false)
        try withoutAD.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID)
        #expect(withoutAD.mmu.dirtyLogMode(memslot: SimulatedVM.slotID) == .writeProtect)
    }

    @Test("dirty-bit mode without A/D flags throws unsupportedDirtyFlag")
    func dirtyBitWithoutADThrows() throws {
        let vm = try populated(1, accessedDirty: false)
        #expect(throws: SLATError.unsupportedDirtyFlag) {
            try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .dirtyBit)
        }
        #expect(vm.guestMemory.memslot(id: SimulatedVM.slotID)?.flags.contains(.dirtyLogging) == false)
    }

    @Test("dirty-log calls for a slot that does not log throw dirtyLoggingNotEnabled")
    func notLoggingThrows() throws {
        let vm = try populated(1)
        #expect(throws: SLATError.dirtyLoggingNotEnabled(slot: SimulatedVM.slotID)) {
            _ = try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)
        }
        #expect(throws: SLATError.dirtyLoggingNotEnabled(slot: SimulatedVM.slotID)) {
            try vm.mmu.disableDirtyLogging(memslot: SimulatedVM.slotID)
        }
        #expect(throws: SLATError.unknownMemslot(slot: 99)) { try vm.mmu.enableDirtyLogging(memslot: 99) }
    }

    @Test("a dirty leaf zapped before the harvest is still reported (dirty-bit mode)")
    func zappedDirtyLeafReported() throws {
        let vm = try populated(8)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .dirtyBit)
        try vm.access(3, .write, vcpu: 0)
        try vm.mmu.zap(vm.frames)
        #expect(markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)) == [3])
    }

    @Test("read faults in a write-protect-logged slot map read-only; the first write is logged")
    func readFaultInLoggedSlotReadOnly() throws {
        let vm = try SimulatedVM()
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        try vm.access(12, .read, vcpu: 0)
        #expect(try #require(vm.leaf(12)).entry & ExtendedPageTableBits.write == 0)
        try vm.access(12, .write, vcpu: 0)
        #expect(markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)) == [12])
    }
}

@Suite("Huge-page recovery")
struct HugePageRecoveryTests {
    @Test("disabling dirty logging collapses the split tables back into huge leaves with one flush")
    func disableRecoversHugePages() throws {
        let vm = try SimulatedVM(frames: 2048, hostSize: .size2M)
        for block: UInt64 in 0..<4 { try vm.access(block * 512, .write, vcpu: 0) }
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        for index: UInt64 in stride(from: 0, to: 2048, by: 100) { try vm.access(index, .write, vcpu: 0) }
        #expect(vm.leaf(0)?.level == 0)
        let flushesBefore = vm.tlb.counts.total
        try vm.mmu.disableDirtyLogging(memslot: SimulatedVM.slotID)
        for block: UInt64 in 0..<4 { #expect(vm.leaf(block * 512 + 7)?.level == 1) }
        #expect(vm.wrongTranslations { vm.hostAddress($0) }.isEmpty)
        #expect(vm.tlb.counts.total > flushesBefore)
        #expect(vm.detectorReports().isEmpty)
        #expect(try vm.access(100, .write, vcpu: 1) == vm.hostAddress(100))
    }

    @Test("tables over 4 KiB host pages are not collapsed")
    func smallHostPagesStay() throws {
        let vm = try SimulatedVM(frames: 1024)
        for index: UInt64 in 0..<512 { try vm.access(index, .read, vcpu: 0) }
        #expect(try vm.mmu.recoverHugePages(in: vm.frames) == 0)
        #expect(vm.leaf(0)?.level == 0)
    }
}
