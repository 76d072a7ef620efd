import SLATArm64
import SLATCore
import Testing

/// After ``StageTwoPageTable/destroy()`` every operation throws `tornDown`,
/// the tables translate nothing, notifier events do nothing, and a second
/// destroy is harmless.
@Suite("Stage-2 destroy: a torn-down VM refuses every call")
struct StageTwoDestroyTests {
    static func destroyedVM() throws -> DeviceMemoryVM {
        let vm = try DeviceMemoryVM(slots: [([], 4 << 20)])
        try vm.fault(0, .write)
        try vm.fault(600, .read)
        vm.lock.lockExclusive()
        vm.mmu.destroy()
        vm.lock.unlockExclusive()
        return vm
    }

    @Test func aFaultAfterDestroyThrowsTornDown() throws {
        let vm = try Self.destroyedVM()
        #expect(throws: SLATError.tornDown) { try vm.fault(1, .read) }
    }

    @Test func mapAfterDestroyThrowsTornDownAndTheTablesTranslateNothing() throws {
        let vm = try Self.destroyedVM()
        #expect(throws: SLATError.tornDown) {
            try vm.mmu.map(GuestPhysicalRange(start: vm.page(0), size: 0x1000), to: HostPhysicalAddress(0x1000),
                           attributes: LeafAttributes(permissions: .readWrite), context: vm.context)
        }
        #expect(vm.leaf(0) == nil)
        #expect(vm.leaf(600) == nil)
    }

    @Test func enablingDirtyLoggingAfterDestroyThrowsTornDown() throws {
        let vm = try Self.destroyedVM()
        #expect(throws: SLATError.tornDown) {
            try vm.mmu.enableDirtyLogging(memslot: 1, guestMemory: vm.guestMemory, lock: vm.lock, context: vm.context)
        }
    }

    @Test func unmapPermissionAndAgingCallsAfterDestroyThrowTornDown() throws {
        let vm = try Self.destroyedVM()
        let range = GuestPhysicalRange(start: vm.page(0), size: 0x1000)
        #expect(throws: SLATError.tornDown) { try vm.mmu.unmap(range, context: vm.context) }
        #expect(throws: SLATError.tornDown) { try vm.mmu.testAndClearYoung(range, context: vm.context) }
        #expect(throws: SLATError.tornDown) {
            try vm.mmu.relaxPermissions(vm.page(0), grant: .write, context: vm.context)
        }
    }

    @Test func aSecondDestroyDoesNothing() throws {
        let vm = try Self.destroyedVM()
        vm.mmu.destroy()
        #expect(vm.mmu.isDestroyed)
    }

    @Test func aNotifierUnmapAfterDestroyDoesNothing() throws {
        let vm = try Self.destroyedVM()
        try vm.guestMemory.hostPages.unmap(HostVirtualRange(start: HostVirtualAddress(DeviceMemoryVM.hostVirtualBase),
                                                            size: 2 << 20))
        #expect(vm.leaf(0) == nil)
    }

    @Test func destroyFreesTheTablesBelowTheRootAndReleasingTheVMFreesTheRoot() throws {
        let format = try StageTwoFormat(inputAddressBits: 40)
        let arena = try TableArena(pageSize: 4096, pageCount: 64, prefault: false)
        var mmu: StageTwoPageTable<TableArena, CountingTLB, CountingCacheMaintenance>? = try StageTwoPageTable(
            format: format, memory: arena, tlb: CountingTLB(), caches: CountingCacheMaintenance(), vmid: 1, readerSlots: 1)
        try mmu?.map(GuestPhysicalRange(start: GuestPhysicalAddress(0x4000_0000), size: 0x1000), to: HostPhysicalAddress(0x1000),
                     attributes: LeafAttributes(permissions: .read), context: PageTableContext(readerSlot: 0))
        #expect(arena.allocatedPageCount == format.rootTableCount + 2)
        mmu?.destroy()
        #expect(arena.allocatedPageCount == format.rootTableCount)
        mmu = nil
        #expect(arena.allocatedPageCount == 0)
    }
}
