import Testing
import SLATArm64
import SLATCore
import SLATx86

/// A table's life: an empty root, tables created as mappings need them and
/// freed when they empty, adoption of an existing root, and destruction.
@Suite struct PageTableLifecycleTests {
    @Test("A new table is just its (concatenated, contiguous, zeroed) root", arguments: FormatCase.allCases)
    func newTableIsItsRoot(_ formatCase: FormatCase) throws { try checkNewTable(formatCase.format) }

    func checkNewTable<F: PageTableFormat>(_ format: F) throws {
        let f = try TableFixture(format)
        #expect(f.arena.allocatedPageCount == format.rootTableCount)
        #expect(f.table.root.rawValue % UInt64(format.rootTableCount * format.tablePageSize) == 0)
        #expect(f.table.reachableTablePages() == format.rootPages(f.table.root))
        #expect(f.table.leaves().isEmpty)
        #expect(tableInvariantViolations(f.table).isEmpty)
    }

    @Test("Unmapping everything frees every table but the root", arguments: FormatCase.allCases)
    func unmappingEverythingFreesEveryTableButTheRoot(_ formatCase: FormatCase) throws {
        try checkUnmapEverything(formatCase.format, window: formatCase.window)
    }

    func checkUnmapEverything<F: PageTableFormat>(_ format: F, window: GuestPhysicalRange) throws {
        let f = try TableFixture(format)
        let base = window.start.rawValue
        try f.map(base, size: f.block + 3 * f.page, to: 0x80_0000_0000)
        try f.map(base + 2 * f.block + f.page, size: 5 * f.page, to: 0x90_0000_0000, maximumLevel: 0)
        try f.map(window.end.rawValue - f.page, size: f.page, to: 0xA0_0000_0000)
        #expect(f.table.reachableTablePages().count > format.rootTableCount)
        // Piecewise: pages first, then the rest.
        try f.unmap(base + 2 * f.block + f.page, size: 2 * f.page)
        try f.unmap(window.start.rawValue, size: window.size)
        #expect(f.table.leaves().isEmpty)
        #expect(f.table.reachableTablePages() == format.rootPages(f.table.root))
        #expect(f.arena.allocatedPageCount == format.rootTableCount + f.context.pageCache.count)
        #expect(tableInvariantViolations(f.table).isEmpty)
    }

    @Test("Unmapping the last page of a table frees the tables that only held it")
    func lastPageFreesItsTables() throws {
        let f = try TableFixture(try ExtendedPageTableFormat(levelCount: 4))
        try f.map(0x4000_0000, size: 0x1000, to: 0x80_0000_0000)
        try f.map(0x4020_0000, size: 0x1000, to: 0x80_0020_0000)
        #expect(f.table.reachableTablePages().count == 5)
        try f.unmap(0x4020_0000, size: 0x1000)
        #expect(f.table.reachableTablePages().count == 4, "only the emptied 4 KiB table goes")
        try f.unmap(0x4000_0000, size: 0x1000)
        #expect(f.table.reachableTablePages().count == 1)
    }

    @Test("Unmapping nothing that is mapped changes nothing and owes nothing")
    func unmappingNothing() throws {
        let f = try TableFixture(try ExtendedPageTableFormat(levelCount: 4))
        try f.map(0x4000_0000, size: 0x1000, to: 0x80_0000_0000)
        let tables = f.table.reachableTablePages()
        f.tlb.clearLog()
        try f.unmap(0x4000_1000, size: 0x10_0000)
        try f.unmap(0x8000_0000, size: 0x4000_0000)
        #expect(f.tlb.log.isEmpty)
        #expect(f.table.reachableTablePages() == tables)
    }

    @Test("destroy frees every table page, the root included", arguments: FormatCase.allCases)
    func destroyFreesEverything(_ formatCase: FormatCase) throws { try checkDestroy(formatCase.format, window: formatCase.window) }

    func checkDestroy<F: PageTableFormat>(_ format: F, window: GuestPhysicalRange) throws {
        let f = try TableFixture(format)
        let base = window.start.rawValue
        try f.map(base, size: 2 * f.block + 7 * f.page, to: 0x80_0000_0000)
        try f.map(window.end.rawValue - 3 * f.page, size: 3 * f.page, to: 0x90_0000_0000)
        // Some pages retired by a shared unmap are still in their grace period.
        var batch = TLBFlushBatch()
        try f.table.unmap(GuestPhysicalRange(window.end.rawValue - 3 * f.page, size: 3 * f.page), mode: .shared,
                          context: f.context, batch: &batch, tlb: f.tlb)
        f.table.settle(batch, tlb: f.tlb, mode: .shared)
        f.table.destroy()
        #expect(f.table.reclaimer.pendingCount == 0)
        #expect(f.arena.allocatedPageCount == f.context.pageCache.count)
        f.context.pageCache.release(to: f.arena)
        #expect(f.arena.allocatedPageCount == 0)
        #expect(f.arena.totalAllocations == f.arena.totalFrees)
    }

    @Test("A table adopting an existing root sees the same mappings")
    func adoptingARoot() throws {
        let f = try TableFixture(try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40))
        try f.map(0x80_0000_0000 - 0x20_0000, size: 0x40_0000, to: 0x1_0000_0000)
        let adopted = try PageTable(format: f.format, memory: f.arena, root: f.table.root)
        #expect(adopted.leaves() == f.table.leaves())
        #expect(adopted.reachableTablePages() == f.table.reachableTablePages())
        #expect(adopted.outputAddress(of: GuestPhysicalAddress(0x80_0000_1234)) == HostPhysicalAddress(0x1_0020_1234))
    }

    @Test("Reachable table pages list the root pages first, in order, then each table once")
    func reachablePagesOrder() throws {
        let format = try StageTwoFormat(granule: .size16KiB, inputAddressBits: 40)
        let f = try TableFixture(format)
        #expect(format.rootTableCount == 16)
        try f.map(0, size: 0x4000, to: 0x80_0000_0000)
        try f.map((1 << 40) - 0x4000, size: 0x4000, to: 0x90_0000_0000)
        let pages = f.table.reachableTablePages()
        #expect(Array(pages.prefix(16)) == format.rootPages(f.table.root))
        #expect(pages.count == 18 && Set(pages).count == 18)
    }
}
