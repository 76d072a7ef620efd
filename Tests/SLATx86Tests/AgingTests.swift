import SLATCore
import SLATSim
import Testing
@testable import SLATx86

@Suite("Aging")
struct AgingTests {
    var all: HostVirtualRange { HostVirtualRange(start: SimulatedVM.hostBase, size: 64 << 12) }

    @Test("with A/D flags: test-young sees accessed bits, clear-young clears them, an access sets them again")
    func accessedBitAging() throws {
        let vm = try SimulatedVM(frames: 64)
        try vm.access(3, .read, vcpu: 0)
        let ager = vm.contexts[2]
        #expect(try vm.mmu.testYoung(all, context: ager))
        #expect(try vm.mmu.clearYoung(all, context: ager))
        #expect(try !vm.mmu.testYoung(all, context: ager))
        vm.tlb.invalidateAll()  // a cached translation would not set A again
        try vm.access(3, .read, vcpu: 0)
        #expect(try vm.mmu.testYoung(all, context: ager))
    }

    @Test("aging a host range only looks at the frames it backs")
    func agingIsRanged() throws {
        let vm = try SimulatedVM(frames: 64)
        try vm.access(10, .read, vcpu: 0)
        let ager = vm.contexts[2]
        let other = HostVirtualRange(start: SimulatedVM.hostBase, size: 10 << 12)
        #expect(try !vm.mmu.testYoung(other, context: ager))
        #expect(try vm.mmu.testYoung(HostVirtualRange(start: SimulatedVM.hostBase.advanced(by: 10 << 12), size: 1 << 12), context: ager))
    }

    @Test("without A/D flags: clear-young makes leaves access-tracked and flushes; the fast path restores them")
    func accessTracking() throws {
        let vm = try SimulatedVM(frames: 64, accessedDirty: false)
        try vm.access(5, .write, vcpu: 0)
        let ager = vm.contexts[2]
        #expect(try vm.mmu.clearYoung(all, context: ager))
        let tracked = try #require(vm.leaf(5)?.entry ?? vm.mmu.leafPointer(for: vm.address(5), addressSpace: 0)?.1)
        #expect(tracked & ExtendedPageTableBits.accessTracked != 0)
        #expect(tracked & ExtendedPageTableBits.readWriteExecute == 0)
        #expect(try !vm.mmu.testYoung(all, context: ager))
        #expect(vm.detectorReports().isEmpty)
        let outcome = try vm.mmu.fastPageFault(GuestPageFault(address: vm.address(5), access: .write), vcpu: vm.contexts[0])
        #expect(outcome == .fixed(level: 0))
        #expect(try vm.access(5, .write, vcpu: 0) == vm.hostAddress(5))
        #expect(try vm.mmu.testYoung(all, context: ager))
    }
}
