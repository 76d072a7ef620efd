import SLATArm64
import SLATCore
import Synchronization
import Testing

@Suite("Stage-2 map: leaf sizes, block split, anchored merge, refused permission-only changes")
struct StageTwoMapTests {
    typealias Fixture = StageTwoMMUFixture

    @Test("A block-aligned range is mapped with one block leaf")
    func alignedRangeGetsABlock() throws {
        let fixture = try Fixture()
        let result = try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, context: fixture.context)
        #expect(result == StageTwoMapResult(outcome: .mapped, freedTablePages: 0))
        #expect(fixture.leaves.map(\.level) == [1])
        #expect(fixture.leaves.first?.output == Fixture.blockOutput)
    }

    @Test("maximumLevel 0 maps the same range with pages")
    func maximumLevelZeroMapsPages() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, maximumLevel: 0, context: fixture.context)
        #expect(fixture.leaves.count == 512)
        #expect(fixture.leaves.allSatisfy { $0.level == 0 })
    }

    @Test("A page mapped inside a block splits it break-before-make: one invalidation of the block at its level")
    func pageInsideBlockSplitsWithBreakBeforeMake() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, context: fixture.context)
        let before = fixture.tlb.counts
        let page = GuestPhysicalRange(start: Fixture.block.start.advanced(by: 0x5000), size: 0x1000)
        try fixture.mmu.map(page, to: HostPhysicalAddress(8 << 30), attributes: Fixture.readWrite, maximumLevel: 0, context: fixture.context)
        let after = fixture.tlb.counts
        // The split's break-before-make, and the replaced page's own leaf.
        #expect(after.contexts == before.contexts)
        #expect(after.addresses - before.addresses >= 1)
        #expect(fixture.leaves.count == 512)
        #expect(fixture.mmu.table.translate(page.start).translation?.output == HostPhysicalAddress(8 << 30))
        #expect(fixture.mmu.table.translate(Fixture.block.start).translation?.output == Fixture.blockOutput)
    }

    @Test("Pages of a new output over a whole block replace it with one break-before-make invalidation, the block's")
    func pagesOfNewOutputOverBlockCostOneInvalidation() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, context: fixture.context)
        let before = fixture.tlb.counts
        let newOutput = HostPhysicalAddress(8 << 30)
        try fixture.mmu.map(Fixture.block, to: newOutput, attributes: Fixture.readWrite, maximumLevel: 0, context: fixture.context)
        #expect(fixture.tlb.counts.addresses - before.addresses == 1)
        #expect(fixture.tlb.counts.contexts == before.contexts)
        let leaves = fixture.leaves
        #expect(leaves.count == 512)
        #expect(leaves.allSatisfy { $0.level == 0 && $0.output.rawValue == newOutput.rawValue + ($0.guestAddress.rawValue - Fixture.block.start.rawValue) })
    }

    @Test("A page of a new output inside a block goes into the split's table: one invalidation, the block's")
    func pageOfNewOutputInsideBlockGoesIntoTheSplit() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, context: fixture.context)
        let before = fixture.tlb.counts
        let page = GuestPhysicalRange(start: Fixture.block.start.advanced(by: 0x5000), size: 0x1000)
        try fixture.mmu.map(page, to: HostPhysicalAddress(8 << 30), attributes: Fixture.readWrite, maximumLevel: 0, context: fixture.context)
        #expect(fixture.tlb.counts.addresses - before.addresses == 1)
        #expect(fixture.mmu.table.translate(page.start).translation?.output == HostPhysicalAddress(8 << 30))
        #expect(fixture.mmu.table.translate(page.start.advanced(by: 0x1000)).translation?.output == Fixture.blockOutput.advanced(by: 0x6000))
    }

    @Test("A shared merge leaves every entry of the detached table of pages frozen until the table is freed")
    func sharedMergeFreezesTheDetachedTable() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, maximumLevel: 0, context: fixture.context)
        let pages = fixture.tablePages
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, mode: .shared, context: fixture.context)
        let detached = try #require(Set(pages).subtracting(fixture.tablePages).first)
        let entries = fixture.arena.entries(at: detached)
        let frozen = fixture.format.frozenEntry
        #expect((0..<fixture.format.entriesPerTable).allSatisfy { entries[$0].load(ordering: .relaxed) == frozen })
    }

    @Test("A block over a table of pages merges: one VMID-wide invalidation, the table freed")
    func blockOverPagesMergesWithOneVMIDWideInvalidation() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, maximumLevel: 0, context: fixture.context)
        let before = fixture.tlb.counts
        let freesBefore = fixture.arena.totalFrees
        let result = try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, context: fixture.context)
        #expect(result.freedTablePages == 1)
        #expect(fixture.tlb.counts.contexts - before.contexts == 1)
        #expect(fixture.tlb.counts.addresses == before.addresses)
        #expect(fixture.arena.totalFrees - freesBefore == 1)
        #expect(fixture.leaves.map(\.level) == [1])
    }

    @Test("A 1 GiB block over a two-level subtree merges with one VMID-wide invalidation and frees every table under it")
    func gigabyteBlockOverSubtreeMerges() throws {
        let fixture = try Fixture()
        let gigabyte = GuestPhysicalRange(start: GuestPhysicalAddress(1 << 30), size: 1 << 30)
        try fixture.mmu.map(GuestPhysicalRange(start: gigabyte.start, size: 8 << 20), to: Fixture.blockOutput,
                            attributes: Fixture.readWrite, maximumLevel: 0, context: fixture.context)
        let before = fixture.tlb.counts
        let result = try fixture.mmu.map(gigabyte, to: Fixture.blockOutput, attributes: Fixture.readWrite, context: fixture.context)
        #expect(result.freedTablePages == 1 + 4)
        #expect(fixture.tlb.counts.contexts - before.contexts == 1)
        #expect(fixture.leaves.map(\.level) == [2])
    }

    @Test("A permission-only change of a live leaf is refused when asked, and the leaf kept")
    func permissionOnlyChangeIsRefused() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: LeafAttributes(permissions: .readWrite), context: fixture.context)
        let before = fixture.leaves
        let counts = fixture.tlb.counts
        let result = try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: LeafAttributes(permissions: .read),
                                         context: fixture.context, refusingPermissionOnlyChanges: true)
        #expect(result.outcome == .refusedPermissionOnlyChange)
        #expect(fixture.leaves == before)
        #expect(fixture.tlb.counts == counts)
    }

    @Test("Without refusal a permission-only change is made in place and its reduction invalidated")
    func permissionOnlyChangeWithoutRefusalIsApplied() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: LeafAttributes(permissions: .readWrite), context: fixture.context)
        let result = try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: LeafAttributes(permissions: .read), context: fixture.context)
        #expect(result.outcome == .mapped)
        #expect(fixture.leaves.first?.attributes.permissions == .read)
        #expect(fixture.tlb.counts.addresses == 1)
    }

    @Test("A new output address for a live leaf is not a permission-only change: it is replaced, not refused")
    func newOutputIsNotRefused() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, context: fixture.context)
        let result = try fixture.mmu.map(Fixture.block, to: HostPhysicalAddress(6 << 30), attributes: Fixture.readWrite,
                                         context: fixture.context, refusingPermissionOnlyChanges: true)
        #expect(result.outcome == .mapped)
        #expect(fixture.leaves.first?.output == HostPhysicalAddress(6 << 30))
        // Break-before-make invalidates at once; the batch also owes the old leaf.
        #expect(fixture.tlb.counts.addresses >= 1)
        #expect(fixture.tlb.counts.contexts == 0)
    }

    @Test("Mapping is shared-mode safe: the same merge in a shared walk frees the subtree through the reclaimer")
    func sharedMergeRetiresThroughReclaimer() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, maximumLevel: 0, context: fixture.context)
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, mode: .shared, context: fixture.context)
        #expect(fixture.mmu.table.reclaimer.retiredCount == 1)
        #expect(fixture.tlb.counts.contexts == 1)
        fixture.mmu.table.reclaimer.synchronize()
        #expect(fixture.mmu.table.reclaimer.pendingCount == 0)
    }

    @Test("The VTTBR carries the root and the VMID; the VTCR the granule and IPA size")
    func registersDescribeTheTables() throws {
        let fixture = try Fixture(granule: .size16KiB, inputAddressBits: 40)
        #expect(fixture.mmu.translationTableBase.vmid == 7)
        #expect(fixture.mmu.translationTableBase.rootAddress(in: fixture.format) == fixture.mmu.table.root)
        #expect(fixture.mmu.translationControl.granule == .size16KiB)
        #expect(fixture.mmu.translationControl.inputAddressBits == 40)
    }
}
