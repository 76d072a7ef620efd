import SLATArm64
import SLATCore
import Testing

@Suite("Stage-2 MMU bad input: typed errors, tables unchanged")
struct StageTwoBadInputTests {
    typealias Fixture = StageTwoMMUFixture

    /// Maps one block, runs `body`, which must throw `expected`, and checks
    /// that neither the leaves nor the table pages changed.
    func expectRejected(_ expected: SLATError, granule: TranslationGranule = .size4KiB,
                        _ body: (Fixture) throws(SLATError) -> Void) throws {
        let fixture = try Fixture(granule: granule)
        let block = fixture.format.entrySize(atLevel: 1)
        try fixture.mmu.map(GuestPhysicalRange(start: GuestPhysicalAddress(block), size: block),
                            to: HostPhysicalAddress(block * 4), attributes: Fixture.readWrite, maximumLevel: 0,
                            context: fixture.context)
        let leaves = fixture.leaves
        let pages = fixture.tablePages
        let counts = fixture.tlb.counts
        let cleans = fixture.caches.dataCacheCleanCount
        #expect(throws: expected) { try body(fixture) }
        #expect(fixture.leaves == leaves)
        #expect(fixture.tablePages == pages)
        #expect(fixture.tlb.counts == counts)
        #expect(fixture.caches.dataCacheCleanCount == cleans)
    }

    @Test("A misaligned guest range is rejected")
    func misalignedRange() throws {
        try expectRejected(.misalignedGuestAddress(GuestPhysicalAddress(0x1800), alignment: 0x1000)) { f throws(SLATError) in
            try f.mmu.map(GuestPhysicalRange(start: GuestPhysicalAddress(0x1800), size: 0x1000),
                          to: HostPhysicalAddress(0x10_0000), attributes: Fixture.readWrite, context: f.context)
        }
    }

    @Test("A misaligned output address is rejected")
    func misalignedOutput() throws {
        try expectRejected(.misalignedOutputAddress(HostPhysicalAddress(0x10_0800), alignment: 0x1000)) { f throws(SLATError) in
            try f.mmu.map(GuestPhysicalRange(start: GuestPhysicalAddress(0x1000), size: 0x1000),
                          to: HostPhysicalAddress(0x10_0800), attributes: Fixture.readWrite, context: f.context)
        }
    }

    @Test("An IPA past the configured size is rejected")
    func ipaPastConfiguredSize() throws {
        let range = GuestPhysicalRange(start: GuestPhysicalAddress((1 << 40) - 0x1000), size: 0x2000)
        try expectRejected(.guestRangeOutOfBounds(range, limit: 1 << 40)) { f throws(SLATError) in
            try f.mmu.map(range, to: HostPhysicalAddress(0x10_0000), attributes: Fixture.readWrite, context: f.context)
        }
    }

    @Test("An output address beyond the PA size is rejected")
    func outputBeyondPhysicalAddressSize() throws {
        try expectRejected(.outputAddressTooWide(HostPhysicalAddress(1 << 48), outputBits: 48)) { f throws(SLATError) in
            try f.mmu.map(GuestPhysicalRange(start: GuestPhysicalAddress(0x1000), size: 0x1000),
                          to: HostPhysicalAddress(1 << 48), attributes: Fixture.readWrite, context: f.context)
        }
    }

    @Test("A block level the 16 KiB granule does not have is rejected")
    func unsupportedBlockLevelForGranule() throws {
        try expectRejected(.unsupportedLevel(2), granule: .size16KiB) { f throws(SLATError) in
            try f.mmu.map(GuestPhysicalRange(start: GuestPhysicalAddress(64 << 30), size: 64 << 30),
                          to: HostPhysicalAddress(64 << 30), attributes: Fixture.readWrite, maximumLevel: 2, context: f.context)
        }
    }

    @Test("A level above the root is rejected")
    func levelAboveRoot() throws {
        try expectRejected(.unsupportedLevel(3)) { f throws(SLATError) in
            try f.mmu.map(GuestPhysicalRange(start: GuestPhysicalAddress(0x1000), size: 0x1000),
                          to: HostPhysicalAddress(0x10_0000), attributes: Fixture.readWrite, maximumLevel: 3, context: f.context)
        }
    }

    @Test("An unlinked subtree with an unaligned output or a level without leaves is rejected before taking pages")
    func unlinkedSubtreeBadInput() throws {
        try expectRejected(.misalignedOutputAddress(HostPhysicalAddress(0x1000), alignment: 2 << 20)) { f throws(SLATError) in
            try f.context.pageCache.topUp(from: f.arena, toAtLeast: 1)
            defer { f.context.pageCache.release(to: f.arena) }
            _ = try f.mmu.createUnlinkedSubtree(output: HostPhysicalAddress(0x1000), attributes: Fixture.readWrite,
                                                level: 1, context: f.context)
        }
        try expectRejected(.unsupportedLevel(0)) { f throws(SLATError) in
            _ = try f.mmu.createUnlinkedSubtree(output: HostPhysicalAddress(0), attributes: Fixture.readWrite,
                                                level: 0, context: f.context)
        }
    }

    @Test("A VMID wider than the VMID size is rejected")
    func vmidTooWide() throws {
        let format = try StageTwoFormat()
        let arena = try TableArena(pageCount: 8, prefault: false)
        #expect(throws: SLATError.vmidOutOfRange(256, bits: 8)) {
            _ = try StageTwoPageTable(format: format, memory: arena, tlb: CountingTLB(),
                                      caches: CountingCacheMaintenance(), vmid: 256, vmidSize: .bits8)
        }
        #expect(arena.allocatedPageCount == 0)
    }
}
