import Testing
import SLATArm64
import SLATCore
import SLATx86

/// How many table pages unmap and permission changes reserve before they
/// start, and that nothing is reserved for a call that is refused.
@Suite struct OperationPageBudgetTests {
    static let kib4: UInt64 = 0x1000
    static let mib2: UInt64 = 0x20_0000

    /// Takes every free page of `arena`, so the next allocation fails.
    static func exhaust(_ arena: TableArena) -> [HostPhysicalAddress] {
        var taken: [HostPhysicalAddress] = []
        while let page = try? arena.allocatePage() { taken.append(page) }
        return taken
    }

    @Test("Unmapping a range that ends on leaf boundaries needs no free table page")
    func unmapOnLeafBoundariesWorksWithMemoryExhausted() throws {
        let f = try TableFixture(try ExtendedPageTableFormat(levelCount: 4), pages: 64)
        try f.map(0, size: 4 * Self.mib2, to: 0x80_0000_0000, maximumLevel: 0)
        f.context.pageCache.release(to: f.arena)
        let tablesBefore = f.arena.allocatedPageCount
        let taken = Self.exhaust(f.arena)
        #expect(f.arena.freePageCount == 0)
        try f.unmap(Self.mib2, size: Self.mib2)
        #expect(f.translation(Self.mib2) == nil)
        #expect(f.translation(0) != nil)
        #expect(f.arena.allocatedPageCount - taken.count == tablesBefore - 1, "the emptied leaf table was freed")
        for page in taken { f.arena.freePage(page) }
    }

    @Test("Unmapping part of a block reserves exactly the tables its split needs")
    func unmapInsideABlockReservesTheSplitChain() throws {
        let f = try TableFixture(try ExtendedPageTableFormat(levelCount: 4), pages: 64)
        try f.map(0, size: 0x4000_0000, to: 0x80_0000_0000)  // one 1 GiB leaf
        #expect(f.shape == ["2@0x0"])
        f.context.pageCache.release(to: f.arena)
        let taken = Self.exhaust(f.arena)
        // Splitting the 1 GiB leaf down to 4 KiB pages takes two tables.
        f.arena.freePage(taken[0])
        #expect(throws: SLATError.outOfTableMemory(needed: 2, available: 1)) {
            try f.unmap(Self.kib4, size: Self.kib4)
        }
        #expect(f.shape == ["2@0x0"], "a refused unmap changes nothing")
        f.arena.freePage(taken[1])
        try f.unmap(Self.kib4, size: Self.kib4)
        #expect(f.translation(Self.kib4) == nil)
        #expect(f.translation(0)?.output == HostPhysicalAddress(0x80_0000_0000))
        #expect(f.translation(2 * Self.kib4)?.output == HostPhysicalAddress(0x80_0000_2000))
        for page in taken.dropFirst(2) { f.arena.freePage(page) }
    }

    @Test("A permission change on whole leaves needs no free table page")
    func permissionChangeOnWholeLeavesWorksWithMemoryExhausted() throws {
        let f = try TableFixture(try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40), pages: 64)
        try f.map(0, size: 2 * Self.mib2, to: 0x8000_0000)
        f.context.pageCache.release(to: f.arena)
        let taken = Self.exhaust(f.arena)
        try f.changePermissions(0, size: Self.mib2, revoke: .write)
        #expect(f.translation(0)?.attributes.permissions == .read)
        #expect(f.translation(Self.mib2)?.attributes.permissions == .readWrite)
        for page in taken { f.arena.freePage(page) }
    }

    @Test("A shared operation with a bad reader slot reserves nothing", arguments: ["map", "unmap", "protect"])
    func badReaderSlotReservesNothing(_ operation: String) throws {
        let format = try ExtendedPageTableFormat(levelCount: 4)
        let arena = try TableArena(pageCount: 64)
        let table = try PageTable(format: format, memory: arena, readerSlots: 2)
        let context = PageTableContext(readerSlot: 2)
        let tlb = CountingTLB()
        let allocated = arena.allocatedPageCount
        let range = GuestPhysicalRange(start: GuestPhysicalAddress(0x20_0000), size: Self.mib2)
        var batch = TLBFlushBatch()
        #expect(throws: SLATError.readerSlotOutOfRange(2, slots: 2)) {
            switch operation {
            case "map":
                try table.map(range, to: HostPhysicalAddress(0x8000_0000), attributes: LeafAttributes(permissions: .read),
                              maximumLevel: 0, mode: .shared, context: context, batch: &batch, tlb: tlb)
            case "unmap":
                try table.unmap(range, mode: .shared, context: context, batch: &batch, tlb: tlb)
            default:
                try table.changePermissions(range, grant: .write, mode: .shared, context: context, batch: &batch, tlb: tlb)
            }
        }
        #expect(context.pageCache.count == 0)
        #expect(arena.allocatedPageCount == allocated)
        let owesNothing = batch.isEmpty
        #expect(owesNothing)
        _ = batch.discard()
    }
}
