import Foundation
import SLATCore
import SLATSim
import Synchronization
import Testing
@testable import SLATx86

/// Every removal, replacement or cleaning of a leaf reports the dirty bit it
/// takes away, whichever path makes it.
@Suite("TDP MMU: no dirty bit lost")
struct LeafChangeAccountingTests {
    /// Maps frames `0..<count` dirty, enables dirty-bit logging (which
    /// cleans them), then writes `written` again through the hardware
    /// walker: those pages are dirty in the tables only, not yet in the log.
    static func dirtyOnlyInTables(_ vm: SimulatedVM, count: UInt64, written: [UInt64]) throws {
        for index in 0..<count { try vm.access(index, .write, vcpu: 0) }
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .dirtyBit)
        for index in written { try vm.access(index, .write, vcpu: 0) }
        for index in written { #expect(vm.leaf(index).map { $0.entry & ExtendedPageTableBits.dirty != 0 } == true) }
        #expect(vm.mmu.dirtyBitmap(memslot: SimulatedVM.slotID).map { markedFrames($0.snapshot()) } == [])
    }

    @Test("NX huge-page recovery keeps the dirty bits of a memslot that logs")
    func nxRecoveryKeepsDirtyBits() throws {
        let vm = try SimulatedVM(frames: 1024, hostSize: .size2M,
                                 configuration: MMUConfiguration(nxHugePages: true))
        try vm.access(0, .executePrivileged, vcpu: 0)
        #expect(vm.mmu.pendingNXSplits.count == 1)
        try Self.dirtyOnlyInTables(vm, count: 4, written: [1, 2])
        try vm.mmu.recoverNXHugePages()
        let logged = markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID))
        #expect(Set(logged).isSuperset(of: [1, 2]))
    }

    @Test("tearing down replaced roots moves their dirty bits to the log")
    func replacedRootsAreHarvested() throws {
        let vm = try SimulatedVM(frames: 64)
        try Self.dirtyOnlyInTables(vm, count: 8, written: [3, 5])
        try vm.mmu.invalidateAllRoots()
        _ = try vm.mmu.reloadRoot(vm.contexts[0])
        #expect(try vm.mmu.zapInvalidatedRoots() > 0)
        let logged = markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID))
        #expect(Set(logged) == [3, 5])
    }

    @Test("a harvest covers the replaced roots a vCPU still uses")
    func harvestCoversRootsStillInUse() throws {
        let vm = try SimulatedVM(frames: 64)
        try Self.dirtyOnlyInTables(vm, count: 8, written: [4])
        try vm.mmu.invalidateAllRoots()
        // vCPU 0 has not reloaded: it still writes through the old root.
        #expect(try vm.mmu.isRootReloadRequested(vm.contexts[0]))
        let logged = markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID))
        #expect(Set(logged) == [4])
    }

    @Test("a zap that yields to a dirty-log enable reports the writes made after it")
    func zapYieldingToEnableHarvests() throws {
        // The zap starts before logging and yields after every leaf; the
        // enable and the writes after it run in its gaps. Every page written
        // after the enable returned must be in the harvest.
        for round in 0..<12 {
            let vm = try SimulatedVM(frames: 512, configuration: MMUConfiguration(yieldInterval: 1))
            for index: UInt64 in 0..<512 { try vm.access(index, .write, vcpu: 0) }
            let written = FrameSet()
            let enabled = DoneFlag()
            try runThreads(2) { thread in
                if thread == 0 {
                    try vm.mmu.zap(vm.frames)
                } else {
                    try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .dirtyBit)
                    enabled.set()
                    for index: UInt64 in stride(from: 511, to: 0, by: -1) {
                        try vm.access(index, .write, vcpu: 1)
                        written.insert(index)
                    }
                }
            }
            #expect(enabled.isSet)
            let logged = Set(markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)))
            let missing = written.all.subtracting(logged)
            #expect(missing.isEmpty, "round \(round): \(missing.count) written pages missing from the log")
            if !missing.isEmpty { break }
        }
    }

    @Test("a fault that replaces a dirty leaf reports its dirty bit")
    func replacedLeafIsHarvested() throws {
        let vm = try SimulatedVM(frames: 64)
        try Self.dirtyOnlyInTables(vm, count: 8, written: [2])
        // The host moves the page: the notifier zaps it (harvest), the next
        // fault maps the new page.
        try vm.guestMemory.hostPages.remap(
            HostVirtualRange(start: SimulatedVM.hostBase.advanced(by: 2 << 12), size: 4096),
            to: HostFrameNumber(0x90_0000))
        let logged = markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID))
        #expect(Set(logged) == [2])
    }
}
