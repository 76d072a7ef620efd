import SLATCore
import SLATSim
import Testing
@testable import SLATx86

/// The per-vCPU memo of the last 4 KiB-leaf table (``LeafTableMemo``): used
/// only while no table has been unlinked since it was filled.
@Suite("Leaf-table memo")
struct LeafTableMemoTests {
    @Test("a 4 KiB fault after recovery collapsed the remembered table maps through the live tables")
    func staleMemoAfterRecoveryIsNotUsed() throws {
        let vm = try SimulatedVM(frames: 1024, hostSize: .size2M)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        try vm.access(0, .write, vcpu: 0)
        #expect(vm.leaf(0)?.level == 0)
        // Collapses the 4 KiB table into a 2 MiB leaf and retires the table.
        try vm.mmu.disableDirtyLogging(memslot: SimulatedVM.slotID)
        #expect(vm.leaf(0)?.level == 1)
        vm.mmu.reclaimer.synchronize()
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        // Same vCPU, same 2 MiB region: must split the huge leaf again.
        #expect(try vm.access(1, .write, vcpu: 0) == vm.hostAddress(1))
        #expect(vm.leaf(1)?.level == 0)
        #expect(vm.wrongTranslations(expected: { vm.hostAddress($0) }).isEmpty)
        #expect(vm.detectorReports().isEmpty)
    }

    @Test("a 4 KiB fault after a zap of the whole root reaches the new tables")
    func staleMemoAfterRootInvalidationIsNotUsed() throws {
        let vm = try SimulatedVM(frames: 1024)
        try vm.access(3, .write, vcpu: 0)
        try vm.mmu.invalidateAllRoots()
        try vm.mmu.zapInvalidatedRoots()
        vm.mmu.reclaimer.synchronize()
        vm.walker = HardwareWalker(format: vm.format, memory: vm.memory, root: try vm.mmu.root())
        vm.tlb.attach(vm.walker)
        #expect(try vm.access(4, .write, vcpu: 0) == vm.hostAddress(4))
        #expect(vm.leaf(4)?.level == 0)
        #expect(vm.leaf(3) == nil)
    }

    @Test("sequential 4 KiB faults of one vCPU all land in the tables the walk reaches")
    func sequentialFaultsThroughMemo() throws {
        let vm = try SimulatedVM(frames: 1536)
        for index in 0..<UInt64(1536) { try vm.access(index, .write, vcpu: index < 768 ? 0 : 1) }
        #expect(vm.wrongTranslations(expected: { vm.hostAddress($0) }).isEmpty)
        #expect((0..<UInt64(1536)).allSatisfy { vm.leaf($0)?.level == 0 })
        #expect(vm.detectorReports().isEmpty)
    }
}
