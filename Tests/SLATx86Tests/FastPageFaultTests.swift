import SLATCore
import SLATSim
import Testing
@testable import SLATx86

@Suite("Fast page fault")
struct FastPageFaultTests {
    @Test("a write to a leaf write-protected for dirty logging is fixed without the lock and logged")
    func restoresWriteAndMarksDirty() throws {
        let vm = try SimulatedVM()
        try vm.access(7, .write, vcpu: 0)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        _ = try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)
        #expect(try #require(vm.leaf(7)).entry & ExtendedPageTableBits.write == 0)
        vm.mmu.lock.lockExclusive()  // proves no lock is needed: a locked path would deadlock
        let outcome = try vm.mmu.fastPageFault(
            GuestPageFault(address: vm.address(7), access: .write, isPermissionFault: true), vcpu: vm.contexts[0])
        vm.mmu.lock.unlockExclusive()
        #expect(outcome == .fixed(level: 0))
        #expect(try #require(vm.leaf(7)).entry & ExtendedPageTableBits.write != 0)
        #expect(vm.mmu.dirtyBitmap(memslot: SimulatedVM.slotID)?.isMarked(GuestFrameNumber(vm.baseFrame + 7)) == true)
    }

    @Test("a write to a leaf without the MMU-writable bit is not fixable")
    func readOnlyLeafNotFixable() throws {
        let vm = try SimulatedVM(slotFlags: .readOnly)
        try vm.access(3, .read, vcpu: 0)
        let outcome = try vm.mmu.fastPageFault(
            GuestPageFault(address: vm.address(3), access: .write, isPermissionFault: true), vcpu: vm.contexts[0])
        #expect(outcome == .notFixable)
    }

    @Test("a huge leaf in a dirty-logged slot is never made writable by the fast path")
    func hugeLeafInLoggedSlotNotFixable() throws {
        let vm = try SimulatedVM(frames: 2048, hostSize: .size2M)
        try vm.access(5, .write, vcpu: 0)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        #expect(try #require(vm.leaf(5)).level == 1)
        let fault = GuestPageFault(address: vm.address(5), access: .write, isPermissionFault: true)
        #expect(try vm.mmu.fastPageFault(fault, vcpu: vm.contexts[0]) == .notFixable)
        #expect(try vm.mmu.handleFault(fault, vcpu: vm.contexts[0]) == .fixed(level: 0))
        #expect(vm.detectorReports().isEmpty)
    }

    @Test("a leaf that already allows the access is spurious")
    func alreadyAllowedIsSpurious() throws {
        let vm = try SimulatedVM()
        try vm.access(2, .write, vcpu: 0)
        let fault = GuestPageFault(address: vm.address(2), access: .write, isPermissionFault: true)
        #expect(try vm.mmu.fastPageFault(fault, vcpu: vm.contexts[1]) == .spurious)
    }

    @Test("no leaf: not fixable")
    func missingLeafNotFixable() throws {
        let vm = try SimulatedVM()
        let fault = GuestPageFault(address: vm.address(2), access: .read, isPermissionFault: true)
        #expect(try vm.mmu.fastPageFault(fault, vcpu: vm.contexts[0]) == .notFixable)
    }

    @Test("leaves the fast path may restore are volatile, so locked writers exchange them")
    func restorableLeavesAreVolatile() throws {
        let format = try ExtendedPageTableFormat(accessedDirtyEnabled: false)
        let protected = ExtendedPageTableBits.mmuPresent | ExtendedPageTableBits.read | ExtendedPageTableBits.mmuWritable
        let tracked = ExtendedPageTableBits.mmuPresent | ExtendedPageTableBits.accessTracked
        let plain = ExtendedPageTableBits.mmuPresent | ExtendedPageTableBits.read | ExtendedPageTableBits.write
        #expect(format.isVolatile(protected, atLevel: 0))
        #expect(format.isVolatile(tracked, atLevel: 0))
        #expect(!format.isVolatile(plain, atLevel: 0))
    }
}
