// Compiled by .ci/run as Embedded Swift for aarch64-none-none-elf and
// x86_64-unknown-none-elf against the bare-metal modules: it instantiates the
// generic range operations with both formats, a caller-provided arena and
// the spinning MMU lock, so the embedded build proves they specialise there.
// It is not run (there is no bare-metal runner in CI).
import SLATCore
import SLATx86
import SLATArm64

public func buildStageTwoTables(region: UnsafeMutableRawPointer, physicalBase: UInt64) -> UInt64 {
    do throws(SLATError) {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40)
        let arena = try TableArena(region: region, pageSize: 4096, pageCount: 64,
                                   physicalBase: HostPhysicalAddress(physicalBase), isZeroed: false)
        return try exercise(format: format, arena: arena)
    } catch {
        return 0
    }
}

public func buildExtendedPageTables(region: UnsafeMutableRawPointer, physicalBase: UInt64) -> UInt64 {
    do throws(SLATError) {
        let format = try ExtendedPageTableFormat(levelCount: 4)
        let arena = try TableArena(region: region, pageSize: 4096, pageCount: 64,
                                   physicalBase: HostPhysicalAddress(physicalBase), isZeroed: false)
        return try exercise(format: format, arena: arena)
    } catch {
        return 0
    }
}

func exercise<Format: PageTableFormat>(format: Format, arena: TableArena) throws(SLATError) -> UInt64 {
    let table = try PageTable(format: format, memory: arena, readerSlots: 4)
    let context = PageTableContext(readerSlot: 0)
    let tlb = CountingTLB()
    let lock = SpinningReaderWriterLock()
    let range = GuestPhysicalRange(start: GuestPhysicalAddress(0x4000_0000), size: 0x20_0000)
    var batch = TLBFlushBatch()
    lock.lockShared()
    try table.map(range, to: HostPhysicalAddress(0x8000_0000), attributes: LeafAttributes(permissions: .readWrite),
                  maximumLevel: 0, mode: .shared, context: context, batch: &batch, tlb: tlb)
    try table.changePermissions(range, revoke: .write, mode: .shared, context: context, batch: &batch, tlb: tlb)
    lock.unlockShared()
    table.settle(batch, tlb: tlb, mode: .shared)
    let output = table.translate(GuestPhysicalAddress(0x4000_1000)).translation?.output.rawValue ?? 0
    var teardown = TLBFlushBatch()
    lock.lockExclusive()
    try table.unmap(range, context: context, batch: &teardown, tlb: tlb)
    lock.unlockExclusive()
    table.settle(teardown, tlb: tlb, mode: .exclusive)
    context.pageCache.release(to: arena)
    return output
}

/// The x86 TDP MMU instantiated bare-metal: a fault, a fast fault, dirty
/// logging, aging, a zap, recovery and teardown.
public func runExtendedPageTableMMU(region: UnsafeMutableRawPointer, physicalBase: UInt64) -> UInt64 {
    do throws(SLATError) {
        let format = try ExtendedPageTableFormat(levelCount: 4)
        let arena = try TableArena(region: region, pageSize: 4096, pageCount: 64,
                                   physicalBase: HostPhysicalAddress(physicalBase), isZeroed: false)
        let guestMemory = GuestMemory()
        try guestMemory.hostPages.map(HostVirtualAddress(0x1000_0000), to: HostFrameNumber(0x8_0000), count: 16)
        try guestMemory.addMemslot(Memslot(id: 1, baseFrame: GuestFrameNumber(0x4_0000), pageCount: 16,
                                           hostAddress: HostVirtualAddress(0x1000_0000)))
        let mmu = try ExtendedPageTableMMU(format: format, memory: arena, tlb: CountingTLB(), guestMemory: guestMemory)
        let vcpu = PageTableContext(readerSlot: 0)
        let address = GuestPhysicalAddress(0x4000_0000)
        _ = try mmu.handleFault(GuestPageFault(address: address, access: .write), vcpu: vcpu)
        try mmu.enableDirtyLogging(memslot: 1, mode: .writeProtect)
        _ = try mmu.fastPageFault(GuestPageFault(address: address, access: .write, isPermissionFault: true), vcpu: vcpu)
        let log = try mmu.getAndClearDirtyLog(memslot: 1)
        try mmu.disableDirtyLogging(memslot: 1)
        _ = try mmu.clearYoung(HostVirtualRange(start: HostVirtualAddress(0x1000_0000), size: 0x1_0000), context: vcpu)
        _ = try mmu.zap(GuestFrameRange(start: GuestFrameNumber(0x4_0000), count: 16))
        _ = try mmu.recoverNXHugePages()
        let pointer = try mmu.reloadRoot(vcpu).rawValue
        mmu.teardown()
        return pointer &+ (log.first ?? 0)
    } catch {
        return 0
    }
}

/// The stage-2 MMU: map (split and anchored merge), access flag, relaxed
/// permissions, eager split, unlinked subtrees, faults and the notifier
/// binding, instantiated with the counting TLB and cache hooks.
public func exerciseStageTwoMMU(region: UnsafeMutableRawPointer, physicalBase: UInt64) -> UInt64 {
    do throws(SLATError) {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40)
        let arena = try TableArena(region: region, pageSize: 4096, pageCount: 64,
                                   physicalBase: HostPhysicalAddress(physicalBase), isZeroed: false)
        let mmu = try StageTwoPageTable(format: format, memory: arena, tlb: CountingTLB(),
                                        caches: CountingCacheMaintenance(), vmid: 1, readerSlots: 4)
        let context = PageTableContext(readerSlot: 0)
        let block = GuestPhysicalRange(start: GuestPhysicalAddress(0x4000_0000), size: 0x20_0000)
        let output = HostPhysicalAddress(0x8000_0000)
        try mmu.map(block, to: output, attributes: LeafAttributes(permissions: .read), maximumLevel: 0, context: context)
        try mmu.map(block, to: output, attributes: LeafAttributes(permissions: .readWrite), maximumLevel: 1,
                    mode: .shared, context: context, refusingPermissionOnlyChanges: true)
        try context.pageCache.topUp(from: arena, toAtLeast: 1)
        _ = try mmu.splitBlocks(in: block, mode: .shared, context: context)
        _ = try mmu.testAndClearYoung(block, mode: .shared, context: context)
        try mmu.makeYoung(block.start, mode: .shared, context: context)
        try mmu.relaxPermissions(block.start, grant: .execute, mode: .shared, context: context)
        var batch = TLBFlushBatch()
        try mmu.writeProtect(block, context: context, batch: &batch)
        mmu.settle(batch, mode: .exclusive)
        try context.pageCache.topUp(from: arena, toAtLeast: 1)
        let subtree = try mmu.createUnlinkedSubtree(output: output, attributes: LeafAttributes(permissions: .read),
                                                    level: 1, context: context)
        mmu.freeUnlinkedSubtree(subtree, level: 1, mode: .exclusive)
        let memory = GuestMemory()
        let lock = SpinningReaderWriterLock()
        let binding = StageTwoNotifierBinding(pageTable: mmu, guestMemory: memory, lock: lock)
        let handler = StageTwoFaultHandler(pageTable: mmu, guestMemory: memory, lock: lock)
        _ = try? handler.handle(StageTwoFault(address: block.start, access: .write), context: context)
        binding.cancel()
        try mmu.unmap(block, context: context)
        let result = mmu.table.translate(block.start).translation?.output.rawValue ?? 0
        mmu.destroy()
        context.pageCache.release(to: arena)
        return result
    } catch {
        return 0
    }
}
