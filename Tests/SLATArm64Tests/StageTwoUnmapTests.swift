import SLATArm64
import SLATCore
import Testing

@Suite("Stage-2 unmap: TLB rules and freed tables")
struct StageTwoUnmapTests {
    typealias Fixture = StageTwoMMUFixture

    func mappedPages() throws -> Fixture {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, maximumLevel: 0,
                            context: fixture.context)
        return fixture
    }

    @Test("A few pages are invalidated one by one, by address with the page level")
    func fewPagesInvalidatedByAddress() throws {
        let fixture = try mappedPages()
        try fixture.mmu.unmap(GuestPhysicalRange(start: Fixture.block.start, size: 0x4000), context: fixture.context)
        #expect(fixture.tlb.counts == TLBInvalidationCounts(addresses: 4))
        #expect(fixture.leaves.count == 508)
    }

    @Test("Many pages cost one range invalidation")
    func manyPagesInvalidatedByOneRange() throws {
        let fixture = try mappedPages()
        try fixture.mmu.unmap(GuestPhysicalRange(start: Fixture.block.start, size: 0x10_0000), context: fixture.context)
        #expect(fixture.tlb.counts == TLBInvalidationCounts(ranges: 1))
        #expect(fixture.leaves.count == 256)
    }

    @Test("A table left empty is unlinked and freed after the invalidation")
    func emptiedTableIsFreed() throws {
        let fixture = try mappedPages()
        let pages = fixture.tablePages.count
        let frees = fixture.arena.totalFrees
        try fixture.mmu.unmap(Fixture.block, context: fixture.context)
        #expect(fixture.leaves.isEmpty)
        #expect(fixture.tablePages.count < pages)
        #expect(fixture.arena.totalFrees > frees)
        #expect(fixture.tlb.counts.total >= 1)
    }

    @Test("Unmapping part of a block splits it break-before-make and keeps the rest")
    func partOfBlockSplitsFirst() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, context: fixture.context)
        try fixture.mmu.unmap(GuestPhysicalRange(start: Fixture.block.start.advanced(by: 0x1000), size: 0x1000),
                              context: fixture.context)
        #expect(fixture.leaves.count == 511)
        #expect(fixture.mmu.table.translate(Fixture.block.start.advanced(by: 0x1000)).translation == nil)
        #expect(fixture.mmu.table.translate(Fixture.block.start.advanced(by: 0x2000)).translation?.output
                == Fixture.blockOutput.advanced(by: 0x2000))
        #expect(fixture.tlb.counts.contexts == 0)
    }
}
