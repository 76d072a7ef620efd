import SLATCore
import SLATSim
import Testing
@testable import SLATx86

/// Which violations ``ExtendedPageTableMMU/handleFault(_:vcpu:)`` tries on
/// the lockless fast path, and the per-vCPU memos that path uses (the leaf
/// table it walks from, the dirty log it marks).
///
/// A fault the full path handles needs table memory for its top-up; the fast
/// path needs none. With the arena used up and an empty page cache, a
/// `.fixed` outcome therefore proves the fast path fixed the fault and an
/// ``SLATError/outOfTableMemory(needed:available:)`` proves the full path
/// was taken.
@Suite("Fast-fault selection and memos")
struct FastFaultSelectionTests {
    /// Allocates every page the VM's arena has left.
    func exhaustTableMemory(_ vm: SimulatedVM) {
        while (try? vm.memory.allocatePage()) != nil {}
    }

    /// The raw leaf entry of frame `index` and its pointer, present or access-tracked.
    func rawLeaf(_ vm: SimulatedVM, _ index: UInt64) throws -> (EntryPointer, UInt64) {
        let (pointer, entry, level) = try #require(vm.mmu.leafPointer(for: vm.address(index), addressSpace: 0))
        #expect(level == 0)
        return (pointer, entry)
    }

    @Test("without A/D flags and before any aging, a not-present violation goes straight to the full path")
    func notPresentSkipsFastPathBeforeAging() throws {
        let vm = try SimulatedVM(frames: 64, accessedDirty: false, arenaPages: 16)
        try vm.access(5, .write, vcpu: 0)
        // An access-tracked leaf the fast path could restore (made by hand:
        // only clear-young makes them, and it has not run).
        let (pointer, entry) = try rawLeaf(vm, 5)
        pointer.pointee.store(SimulatedVM.MMU.accessTrackedForm(of: entry), ordering: .releasing)
        exhaustTableMemory(vm)
        let fault = GuestPageFault(address: vm.address(5), access: .read, isPermissionFault: false)
        #expect(throws: SLATError.self) { _ = try vm.mmu.handleFault(fault, vcpu: vm.contexts[1]) }
        #expect(try rawLeaf(vm, 5).1 & ExtendedPageTableBits.accessTracked != 0)
    }

    @Test("without A/D flags and after clear-young ran, a not-present violation tries the fast path first")
    func notPresentTakesFastPathAfterAging() throws {
        let vm = try SimulatedVM(frames: 64, accessedDirty: false, arenaPages: 16)
        try vm.access(5, .write, vcpu: 0)
        #expect(try vm.mmu.clearYoung(HostVirtualRange(start: SimulatedVM.hostBase, size: 64 << 12), context: vm.contexts[2]))
        exhaustTableMemory(vm)
        let fault = GuestPageFault(address: vm.address(5), access: .read, isPermissionFault: false)
        #expect(try vm.mmu.handleFault(fault, vcpu: vm.contexts[1]) == .fixed(level: 0))
        #expect(try rawLeaf(vm, 5).1 & ExtendedPageTableBits.accessTracked == 0)
        #expect(vm.detectorReports().isEmpty)
    }

    @Test("the full path restores an access-tracked leaf it meets by installing the leaf afresh")
    func fullPathRestoresAccessTrackedLeaf() throws {
        let vm = try SimulatedVM(frames: 64, accessedDirty: false)
        try vm.access(5, .write, vcpu: 0)
        let (pointer, entry) = try rawLeaf(vm, 5)
        pointer.pointee.store(SimulatedVM.MMU.accessTrackedForm(of: entry), ordering: .releasing)
        let fault = GuestPageFault(address: vm.address(5), access: .write, isPermissionFault: false)
        #expect(try vm.mmu.slowPageFault(fault, vcpu: vm.contexts[1]) == .fixed(level: 0))
        let restored = try rawLeaf(vm, 5).1
        #expect(restored & ExtendedPageTableBits.accessTracked == 0)
        #expect(restored & ExtendedPageTableBits.write != 0)
        #expect(vm.mmu.format.outputAddress(ofLeaf: restored, atLevel: 0) == vm.hostAddress(5))
    }

    @Test("a permission violation on a leaf write-protected for dirty logging takes the fast path (no table memory needed)")
    func permissionFaultTakesFastPath() throws {
        let vm = try SimulatedVM(frames: 64, arenaPages: 16)
        try vm.access(7, .write, vcpu: 0)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        _ = try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)
        exhaustTableMemory(vm)
        let fault = GuestPageFault(address: vm.address(7), access: .write, isPermissionFault: true)
        #expect(try vm.mmu.handleFault(fault, vcpu: vm.contexts[1]) == .fixed(level: 0))
        #expect(try rawLeaf(vm, 7).1 & ExtendedPageTableBits.write != 0)
        #expect(vm.mmu.dirtyBitmap(memslot: SimulatedVM.slotID)?.isMarked(GuestFrameNumber(vm.baseFrame + 7)) == true)
    }

    @Test("after dirty logging is disabled and enabled again, a fast fault marks the new bitmap, not the remembered one")
    func dirtyLogMemoFollowsReenable() throws {
        let vm = try SimulatedVM(frames: 64)
        try vm.access(7, .write, vcpu: 0)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        let fault = GuestPageFault(address: vm.address(7), access: .write, isPermissionFault: true)
        let first = try #require(vm.mmu.dirtyBitmap(memslot: SimulatedVM.slotID))
        #expect(try vm.mmu.fastPageFault(fault, vcpu: vm.contexts[0]) == .fixed(level: 0))
        #expect(first.isMarked(GuestFrameNumber(vm.baseFrame + 7)))
        try vm.mmu.disableDirtyLogging(memslot: SimulatedVM.slotID, recoverHugePages: false)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        let second = try #require(vm.mmu.dirtyBitmap(memslot: SimulatedVM.slotID))
        #expect(second !== first)
        #expect(try vm.mmu.fastPageFault(fault, vcpu: vm.contexts[0]) == .fixed(level: 0))
        #expect(second.isMarked(GuestFrameNumber(vm.baseFrame + 7)))
    }

    @Test("a fast fault between enable's protection pass and the end of its invalidation marks the new log")
    func fastFaultInsideEnableWindowIsLogged() throws {
        let vm = try SimulatedVM(frames: 64)
        // vCPU 0's resolve memo now holds the memslot without the logging flag.
        try vm.access(7, .write, vcpu: 0)
        // enableDirtyLogging's steps, stopped before the invalidation ends
        // (the sequence has not moved yet, so that memo still looks current).
        let slot = try #require(vm.guestMemory.memslot(id: SimulatedVM.slotID))
        let bitmap = DirtyBitmap(frames: slot.frames)
        #expect(vm.mmu.dirtyLogs.add(DirtyLogRegistry.Entry(memslot: slot.id, mode: .writeProtect, bitmap: bitmap)))
        vm.mmu.dirtyLoggingSlots.wrappingAdd(1, ordering: .acquiringAndReleasing)
        try vm.guestMemory.updateMemslotFlags(id: slot.id, to: slot.flags.union(.dirtyLogging))
        vm.guestMemory.invalidations.beginInvalidation(slot.frames)
        vm.mmu.lock.lockExclusive()
        vm.mmu.protectForDirtyLogging(slot.frames, mode: .writeProtect)
        vm.mmu.lock.unlockExclusive()
        let fault = GuestPageFault(address: vm.address(7), access: .write, isPermissionFault: true)
        #expect(try vm.mmu.fastPageFault(fault, vcpu: vm.contexts[0]) == .fixed(level: 0))
        vm.guestMemory.invalidations.endInvalidation(slot.frames)
        // The leaf is writable again, so only the bitmap can report the write.
        #expect(bitmap.isMarked(GuestFrameNumber(vm.baseFrame + 7)))
    }

    @Test("the full path marks the log of the page's memslot through the same memo")
    func fullPathMarksThroughMemo() throws {
        let vm = try SimulatedVM(frames: 64)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        for index in [UInt64(3), 4, 9] { try vm.access(index, .write, vcpu: 0) }
        let words = try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)
        #expect(words.first == (1 << 3 | 1 << 4 | 1 << 9))
    }

    @Test("a fast fault after recovery collapsed the remembered leaf table walks the live tables")
    func fastFaultStaleLeafTableMemoIsNotUsed() throws {
        let vm = try SimulatedVM(frames: 1024, hostSize: .size2M)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        try vm.access(0, .write, vcpu: 0)
        _ = try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)
        let fault = GuestPageFault(address: vm.address(0), access: .write, isPermissionFault: true)
        // Remembers the 4 KiB table of the region for vCPU 0.
        #expect(try vm.mmu.fastPageFault(fault, vcpu: vm.contexts[0]) == .fixed(level: 0))
        // Collapses that table into a writable 2 MiB leaf and retires it.
        try vm.mmu.disableDirtyLogging(memslot: SimulatedVM.slotID)
        #expect(vm.leaf(1)?.level == 1)
        vm.mmu.reclaimer.synchronize()
        let other = GuestPageFault(address: vm.address(1), access: .write, isPermissionFault: true)
        let outcome = try vm.mmu.fastPageFault(other, vcpu: vm.contexts[0])
        #expect(outcome == .spurious || outcome == .fixed(level: 1))
        #expect(vm.detectorReports().isEmpty)
    }
}
