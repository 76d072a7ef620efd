import SLATCore
import SLATSim
import Testing
@testable import SLATx86

@Suite("NX huge pages")
struct NXHugePageTests {
    func makeVM() throws -> SimulatedVM {
        try SimulatedVM(frames: 2048, hostSize: .size2M, configuration: MMUConfiguration(nxHugePages: true))
    }

    @Test("an instruction fetch in a 2 MiB-backed region maps an executable 4 KiB leaf under a marked table")
    func executeMapsSmallPage() throws {
        let vm = try makeVM()
        try vm.access(20, .executePrivileged, vcpu: 0)
        let leaf = try #require(vm.leaf(20))
        #expect(leaf.level == 0)
        #expect(leaf.entry & ExtendedPageTableBits.execute != 0)
        #expect(vm.mmu.pendingNXSplits.count == 1)
        let pointer = try #require(vm.mmu.entryPointer(for: vm.address(20), level: 1, addressSpace: 0))
        #expect(pointer.pointee.load(ordering: .relaxed) & ExtendedPageTableBits.nxHugePageSplit != 0)
    }

    @Test("huge leaves are never executable under the policy")
    func hugeLeavesNotExecutable() throws {
        let vm = try makeVM()
        try vm.access(0, .read, vcpu: 0)
        let leaf = try #require(vm.leaf(0))
        #expect(leaf.level == 1)
        #expect(leaf.entry & ExtendedPageTableBits.execute == 0)
    }

    @Test("a later non-exec fault in a split block maps 4 KiB, not a huge leaf over the split")
    func readAfterExecuteStaysSmall() throws {
        let vm = try makeVM()
        try vm.access(20, .executePrivileged, vcpu: 0)
        let outcome = try vm.mmu.handleFault(GuestPageFault(address: vm.address(300), access: .read), vcpu: vm.contexts[1])
        #expect(outcome == .fixed(level: 0))
        #expect((vm.leaf(20)?.entry ?? 0) & ExtendedPageTableBits.execute != 0)
    }

    @Test("an instruction fetch on a huge leaf splits it; the other pages keep their translation")
    func executeSplitsHugeLeaf() throws {
        let vm = try makeVM()
        try vm.access(1, .read, vcpu: 1)
        try vm.access(40, .executePrivileged, vcpu: 0)
        #expect(vm.leaf(40)?.level == 0)
        #expect(vm.wrongTranslations { vm.hostAddress($0) }.isEmpty)
        #expect(try vm.access(1, .read, vcpu: 1) == vm.hostAddress(1))
        #expect(vm.detectorReports().isEmpty)
    }

    @Test("recovery zaps the split so the next fault installs the huge leaf again")
    func recoveryRestoresHugeLeaf() throws {
        let vm = try makeVM()
        try vm.access(20, .executePrivileged, vcpu: 0)
        #expect(try vm.mmu.recoverNXHugePages() == 1)
        #expect(vm.leaf(20) == nil)
        #expect(vm.mmu.pendingNXSplits.isEmpty)
        try vm.access(20, .read, vcpu: 0)
        #expect(vm.leaf(20)?.level == 1)
        #expect(vm.detectorReports().isEmpty)
    }
}
