import SLATCore
import SLATSim
import Testing
@testable import SLATx86

@Suite("Zaps, roots and the mmu notifier")
struct ZapTests {
    @Test("zapping a range removes its leaves and flushes them")
    func zapRemovesAndFlushes() throws {
        let vm = try SimulatedVM()
        for index: UInt64 in 0..<64 { try vm.access(index, .write, vcpu: Int(index % 2)) }
        let removed = try vm.mmu.zap(GuestFrameRange(start: GuestFrameNumber(vm.baseFrame + 16), count: 16))
        #expect(removed == 16)
        #expect((16..<32).allSatisfy { vm.leaf(UInt64($0)) == nil })
        #expect(vm.leaf(15) != nil && vm.leaf(32) != nil)
        #expect(vm.detectorReports().isEmpty)
    }

    @Test("a zap that yields the lock every leaf still removes everything once")
    func yieldingZapCompletes() throws {
        let vm = try SimulatedVM(configuration: MMUConfiguration(yieldInterval: 1))
        for index: UInt64 in 0..<600 { try vm.access(index, .read, vcpu: 0) }
        #expect(try vm.mmu.zap(vm.frames) == 600)
        #expect(vm.wrongTranslations { _ in nil }.isEmpty)
        #expect(vm.detectorReports().isEmpty)
    }

    @Test("a huge leaf partly inside the range is zapped whole")
    func partialHugeLeafZappedWhole() throws {
        let vm = try SimulatedVM(frames: 1024, hostSize: .size2M)
        try vm.access(0, .read, vcpu: 0)
        #expect(try vm.mmu.zap(GuestFrameRange(start: GuestFrameNumber(vm.baseFrame + 3), count: 1)) == 1)
        #expect(vm.leaf(0) == nil && vm.leaf(511) == nil)
        #expect(vm.detectorReports().isEmpty)
    }

    @Test("a host unmap zaps the range through the notifier before it returns")
    func hostUnmapZaps() throws {
        let vm = try SimulatedVM()
        for index: UInt64 in 0..<8 { try vm.access(index, .write, vcpu: 0) }
        try vm.guestMemory.hostPages.unmap(HostVirtualRange(start: SimulatedVM.hostBase.advanced(by: 2 << 12), size: 2 << 12))
        #expect(vm.leaf(2) == nil && vm.leaf(3) == nil)
        #expect(vm.leaf(1) != nil && vm.leaf(4) != nil)
        #expect(vm.detectorReports().isEmpty)
        #expect(throws: SLATError.self) { try vm.access(2, .read, vcpu: 0) }
    }

    @Test("a host remap is seen by the next fault")
    func hostRemapRefaults() throws {
        let vm = try SimulatedVM()
        try vm.access(4, .write, vcpu: 0)
        try vm.guestMemory.hostPages.remap(HostVirtualRange(start: SimulatedVM.hostBase.advanced(by: 4 << 12), size: 1 << 12),
                                           to: HostFrameNumber(0x90_0000))
        #expect(try vm.access(4, .read, vcpu: 0) == HostPhysicalAddress(0x90_0000 << 12))
        #expect(vm.detectorReports().isEmpty)
    }

    @Test("invalidate-all swaps in empty roots at once and tears the old ones down later")
    func invalidateAllRootsIsLazy() throws {
        let vm = try SimulatedVM(configuration: MMUConfiguration(addressSpaceCount: 2))
        for index: UInt64 in 0..<16 { try vm.access(index, .write, vcpu: 0) }
        let oldRoot = try vm.mmu.root()
        let tables = vm.memory.allocatedPageCount
        try vm.mmu.invalidateAllRoots()
        #expect(try vm.mmu.root() != oldRoot)
        #expect(vm.leaf(0) == nil)
        #expect(vm.tlb.counts.contexts >= 1)
        // Old tables are still allocated until the lazy teardown.
        #expect(vm.memory.allocatedPageCount == tables + 2)
        // vCPU 0 used the old root: it stays until the vCPU reloads.
        #expect(try vm.mmu.zapInvalidatedRoots() == 0)
        try vm.reloadRoots(vcpu: 0)
        #expect(try vm.mmu.zapInvalidatedRoots() > 0)
        vm.mmu.reclaimer.synchronize()
        #expect(vm.memory.allocatedPageCount < tables)
        #expect(try vm.access(0, .read, vcpu: 0) == vm.hostAddress(0))
    }

    @Test("each address space has its own root and EPTP")
    func addressSpacesHaveOwnRoots() throws {
        let vm = try SimulatedVM(configuration: MMUConfiguration(addressSpaceCount: 2))
        #expect(try vm.mmu.root(addressSpace: 0) != vm.mmu.root(addressSpace: 1))
        #expect(try vm.mmu.pointer(addressSpace: 1).rootAddress == vm.mmu.root(addressSpace: 1))
        #expect(try vm.mmu.pointer().accessedDirtyEnabled)
        _ = try vm.mmu.handleFault(GuestPageFault(address: vm.address(1), access: .read, addressSpace: 1), vcpu: vm.contexts[0])
        #expect(vm.leaf(1) == nil)
        #expect(try vm.mmu.table(addressSpace: 1).translate(vm.address(1)).translation != nil)
    }
}
