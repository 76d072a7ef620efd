import SLATArm64
import SLATCore
import Testing

@Suite("Stage-2 unlinked subtrees and eager block splitting")
struct StageTwoUnlinkedSubtreeTests {
    typealias Fixture = StageTwoMMUFixture

    @Test("An unlinked subtree for a 1 GiB block is fully populated with pages and takes 513 cached pages")
    func unlinkedSubtreeIsFullyPopulated() throws {
        let fixture = try Fixture()
        #expect(fixture.mmu.tablePagesForSubtree(level: 2, leafLevel: 0) == 513)
        try fixture.context.pageCache.topUp(from: fixture.arena, toAtLeast: 513)
        let allocated = fixture.arena.allocatedPageCount
        let top = try fixture.mmu.createUnlinkedSubtree(output: HostPhysicalAddress(3 << 30), attributes: Fixture.readWrite,
                                                        level: 2, context: fixture.context)
        #expect(fixture.context.pageCache.count == 0)
        #expect(fixture.arena.allocatedPageCount == allocated)
        #expect(fixture.leaves.isEmpty)
        let entries = fixture.arena.entries(at: top)
        let lastTable = entries[511].load(ordering: .relaxed)
        #expect(fixture.format.isTable(lastTable, atLevel: 1))
        let lastPage = fixture.arena.entries(at: fixture.format.childTable(of: lastTable))[511].load(ordering: .relaxed)
        #expect(fixture.format.outputAddress(ofLeaf: lastPage, atLevel: 0) == HostPhysicalAddress((3 << 30) + (1 << 30) - 0x1000))
        #expect(fixture.format.permissions(ofLeaf: lastPage) == .readWrite)
        #expect(fixture.mmu.freeUnlinkedSubtree(top, level: 2, mode: .exclusive) == 513)
    }

    @Test("Too few cached pages is an error before any page is taken")
    func shortCacheIsRejected() throws {
        let fixture = try Fixture()
        try fixture.context.pageCache.topUp(from: fixture.arena, toAtLeast: 3)
        #expect(throws: SLATError.outOfTableMemory(needed: 513, available: 3)) {
            _ = try fixture.mmu.createUnlinkedSubtree(output: HostPhysicalAddress(1 << 30), attributes: Fixture.readWrite,
                                                      level: 2, context: fixture.context)
        }
        #expect(fixture.context.pageCache.count == 3)
    }

    @Test("Splitting blocks keeps every translation, links each with one break-before-make invalidation at the block's level")
    func splitBlocksKeepsTranslations() throws {
        let fixture = try Fixture()
        let range = GuestPhysicalRange(start: Fixture.block.start, size: 8 << 20)
        try fixture.mmu.map(range, to: Fixture.blockOutput, attributes: Fixture.readWrite, context: fixture.context)
        try fixture.context.pageCache.topUp(from: fixture.arena, toAtLeast: 4)
        let progress = try fixture.mmu.splitBlocks(in: range, mode: .shared, context: fixture.context)
        #expect(progress == StageTwoSplitProgress(blocksSplit: 4, resumeAddress: nil, pagesWanted: 0))
        #expect(fixture.tlb.counts == TLBInvalidationCounts(addresses: 4))
        #expect(fixture.leaves.count == 4 * 512)
        for offset: UInt64 in [0, 0x1000, 0x20_0000, (8 << 20) - 0x1000] {
            #expect(fixture.mmu.table.translate(range.start.advanced(by: offset)).translation?.output
                    == Fixture.blockOutput.advanced(by: offset))
        }
        #expect(fixture.leaves.allSatisfy { $0.attributes == Fixture.readWrite })
    }

    @Test("Splitting stops when the cache runs short and resumes from where it stopped")
    func splitStopsAndResumes() throws {
        let fixture = try Fixture()
        let range = GuestPhysicalRange(start: Fixture.block.start, size: 8 << 20)
        try fixture.mmu.map(range, to: Fixture.blockOutput, attributes: Fixture.readWrite, context: fixture.context)
        try fixture.context.pageCache.topUp(from: fixture.arena, toAtLeast: 2)
        let first = try fixture.mmu.splitBlocks(in: range, mode: .exclusive, context: fixture.context)
        #expect(first == StageTwoSplitProgress(blocksSplit: 2, resumeAddress: range.start.advanced(by: 4 << 20), pagesWanted: 1))
        try fixture.context.pageCache.topUp(from: fixture.arena, toAtLeast: 2)
        let resume = try #require(first.resumeAddress)
        let second = try fixture.mmu.splitBlocks(in: GuestPhysicalRange(start: resume, end: range.end), mode: .exclusive,
                                                 context: fixture.context)
        #expect(second.isComplete && second.blocksSplit == 2)
        #expect(fixture.leaves.count == 4 * 512)
    }

    @Test("Pages mapped after a split are untouched by a second split")
    func splittingPagesIsANoOp() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, maximumLevel: 0, context: fixture.context)
        let progress = try fixture.mmu.splitBlocks(in: Fixture.block, mode: .exclusive, context: fixture.context)
        #expect(progress.blocksSplit == 0 && progress.isComplete)
        #expect(fixture.tlb.counts.total == 0)
    }
}
