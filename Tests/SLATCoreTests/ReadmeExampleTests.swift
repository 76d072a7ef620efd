import Testing
import SLAT
import SLATx86

/// The "A first table" sample of README.md, statement for statement, so the
/// README keeps compiling and doing what it says.
@Suite struct ReadmeExampleTests {
    @Test("The README's first table maps 1 GiB as one leaf and translates through it")
    func firstTable() throws {
        let format = try ExtendedPageTableFormat(levelCount: 4)
        let arena = try TableArena(pageCount: 1024)            // table pages, own physical base
        let table = try PageTable(format: format, memory: arena)
        let context = PageTableContext()                        // this thread's page cache + reader slot
        let tlb = CountingTLB()                                 // or your INVEPT / TLBI implementation

        var batch = TLBFlushBatch()
        try table.map(GuestPhysicalRange(start: GuestPhysicalAddress(0x4000_0000), size: 1 << 30),
                      to: HostPhysicalAddress(0x1_0000_0000),
                      attributes: LeafAttributes(permissions: .all),
                      context: context, batch: &batch, tlb: tlb)
        table.settle(batch, tlb: tlb, mode: .exclusive)         // flush what is owed, then free

        let eptp = try ExtendedPageTablePointer(format: format, root: table.root)
        let translation = try #require(table.translate(GuestPhysicalAddress(0x4000_1234)).translation)
        #expect(translation.output == HostPhysicalAddress(0x1_0000_1234))
        #expect(translation.size == 1 << 30, "one 1 GiB leaf, as the README says")
        // WB (6), walk length 4 - 1 in bits 5:3, A/D enabled (bit 6), root at the arena's first page.
        #expect(eptp.rawValue == table.root.rawValue | 0x5E)
    }
}
