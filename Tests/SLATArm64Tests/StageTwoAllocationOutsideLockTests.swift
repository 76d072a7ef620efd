import SLATArm64
import SLATCore
import Testing

/// A stage-2 VM whose table memory records allocations made while its MMU
/// lock is held.
final class LockWatchingVM: @unchecked Sendable {
    typealias MMU = StageTwoPageTable<LockWatchingTableMemory, CountingTLB, CountingCacheMaintenance>
    static let guestBase: UInt64 = 0x1_0000_0000
    static let hostBase: UInt64 = 0x20_0000_0000
    static let hostVirtualBase: UInt64 = 0x7F00_0000_0000

    let lock: HolderCountingLock
    let memory: LockWatchingTableMemory
    let mmu: MMU
    let guestMemory = GuestMemory()
    let handler: StageTwoFaultHandler<LockWatchingTableMemory, CountingTLB, CountingCacheMaintenance, HolderCountingLock>
    let context = PageTableContext(readerSlot: 0)

    /// One 4 MiB memslot backed by 2 MiB host mappings.
    init() throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40)
        let arena = try TableArena(pageSize: 4096, pageCount: 64, prefault: false)
        lock = HolderCountingLock()
        memory = LockWatchingTableMemory(wrapping: arena, lock: lock)
        mmu = try StageTwoPageTable(format: format, memory: memory, tlb: CountingTLB(),
                                    caches: CountingCacheMaintenance(), vmid: 1, readerSlots: 2)
        let size: UInt64 = 4 << 20
        try guestMemory.hostPages.map(HostVirtualAddress(Self.hostVirtualBase), to: HostPhysicalAddress(Self.hostBase).frame,
                                      size: .size2M, count: size >> HostMappingSize.size2M.shift)
        try guestMemory.addMemslot(Memslot(id: 1, baseFrame: GuestPhysicalAddress(Self.guestBase).frame,
                                           pageCount: size >> frameShift,
                                           hostAddress: HostVirtualAddress(Self.hostVirtualBase)))
        handler = StageTwoFaultHandler(pageTable: mmu, guestMemory: guestMemory, lock: lock)
    }

    func page(_ index: UInt64) -> GuestPhysicalAddress { GuestPhysicalAddress(Self.guestBase + index << 12) }

    /// Gives every page of the vCPU's cache back to table memory.
    func emptyPageCache() { context.pageCache.release(to: memory) }
}

@Suite("Stage-2 operations that own the MMU lock allocate table pages only outside it")
struct StageTwoAllocationOutsideLockTests {
    @Test("A fault whose page cache ran dry before the lock tops it up with the lock dropped")
    func faultRefillsOutsideLock() throws {
        let vm = try LockWatchingVM()
        vm.lock.runBeforeNextSharedHold { vm.emptyPageCache() }
        let outcome = try vm.handler.handle(StageTwoFault(address: vm.page(3), access: .write), context: vm.context)
        #expect(outcome == .mapped(level: 1))
        #expect(vm.mmu.table.translate(vm.page(3)).translation?.level == 1)
        #expect(vm.memory.allocationCount > 0)
        #expect(vm.memory.allocationsUnderLock == 0)
    }

    @Test("Harvesting a dirty page inside a protected block splits it with pages allocated outside the lock")
    func harvestSplitRefillsOutsideLock() throws {
        let vm = try LockWatchingVM()
        _ = try vm.handler.handle(StageTwoFault(address: vm.page(3), access: .write), context: vm.context)
        try vm.mmu.enableDirtyLogging(memslot: 1, guestMemory: vm.guestMemory, lock: vm.lock, context: vm.context)
        // A page the VMM reports dirty while its block is still mapped whole.
        let frame = vm.page(7).frame
        vm.mmu.dirtyLogs.bitmap(forMemslot: 1)?.mark(frame)
        vm.emptyPageCache()
        let before = vm.memory.allocationCount
        let words = try vm.mmu.getAndClearDirtyLog(memslot: 1, lock: vm.lock, context: vm.context)
        #expect(words.first == 1 << 7)
        let leaf = try #require(vm.mmu.table.translate(vm.page(7)).translation)
        #expect(leaf.level == 0 && !leaf.attributes.permissions.contains(.write))
        #expect(vm.memory.allocationCount > before)
        #expect(vm.memory.allocationsUnderLock == 0)
    }
}
