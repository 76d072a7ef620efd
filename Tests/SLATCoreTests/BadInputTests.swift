import Testing
import SLATArm64
import SLATCore
import SLATx86

/// Every error the range operations throw, with the exact case and values,
/// and the promise that comes with it (``SLATError``): an operation that
/// throws has changed nothing — same leaves, same table pages, same memory,
/// nothing owed.
@Suite struct BadInputTests {
    /// A table with a few mappings to be left alone: a block, a run of pages
    /// and a read-only page, near the start of the format's test window.
    static func populated<F: PageTableFormat>(
        _ format: F, base: UInt64 = 0x4000_0000, pages: Int = 256
    ) throws -> (TableFixture<F>, UInt64) {
        let f = try TableFixture(format, pages: pages)
        try f.map(base, size: f.block, to: 0x80_0000_0000)
        try f.map(base + f.block, size: 5 * f.page, to: 0x90_0000_0000, maximumLevel: 0)
        try f.map(base + 2 * f.block, size: f.page, to: 0xA0_0000_0000, permissions: .read)
        return (f, base)
    }

    /// Runs `body`, expects it to throw exactly `expected`, owe nothing, and
    /// leave the leaves, the table pages and the memory as they were.
    static func expectRejection<F: PageTableFormat>(
        _ f: TableFixture<F>, _ expected: SLATError,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ body: (inout TLBFlushBatch) throws(SLATError) -> Void
    ) {
        let leaves = f.table.leaves()
        let tables = f.table.reachableTablePages()
        let allocated = f.arena.allocatedPageCount
        let cached = f.context.pageCache.count
        var batch = TLBFlushBatch()
        var thrown: SLATError?
        do throws(SLATError) { try body(&batch) } catch { thrown = error }
        #expect(thrown == expected, sourceLocation: sourceLocation)
        let owesNothing = batch.isEmpty
        #expect(owesNothing, "a rejected operation owes invalidations or pages", sourceLocation: sourceLocation)
        f.tlb.clearLog()
        f.table.settle(batch, tlb: f.tlb, mode: .exclusive)
        #expect(f.tlb.log.isEmpty, sourceLocation: sourceLocation)
        #expect(f.table.leaves() == leaves, "the leaves changed", sourceLocation: sourceLocation)
        #expect(f.table.reachableTablePages() == tables, "the table pages changed", sourceLocation: sourceLocation)
        #expect(f.arena.allocatedPageCount == allocated, "table memory changed", sourceLocation: sourceLocation)
        #expect(f.context.pageCache.count == cached, sourceLocation: sourceLocation)
    }

    // MARK: Ranges

    @Test("An empty range is rejected by every operation", arguments: FormatCase.allCases)
    func emptyRange(_ formatCase: FormatCase) throws { try checkEmptyRange(formatCase.format, base: formatCase.window.start.rawValue) }

    func checkEmptyRange<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let (f, _) = try Self.populated(format, base: base)
        let empty = GuestPhysicalRange(base, size: 0)
        Self.expectRejection(f, .emptyRange) { batch throws(SLATError) in
            try f.table.map(empty, to: HostPhysicalAddress(0x80_0000_0000), attributes: LeafAttributes(permissions: .read),
                            context: f.context, batch: &batch, tlb: f.tlb)
        }
        Self.expectRejection(f, .emptyRange) { batch throws(SLATError) in
            try f.table.unmap(empty, context: f.context, batch: &batch, tlb: f.tlb)
        }
        Self.expectRejection(f, .emptyRange) { batch throws(SLATError) in
            try f.table.changePermissions(empty, revoke: .write, context: f.context, batch: &batch, tlb: f.tlb)
        }
    }

    @Test("A guest address that is not page-aligned is rejected", arguments: FormatCase.allCases)
    func misalignedGuestAddress(_ formatCase: FormatCase) throws { try checkMisalignedGuestAddress(formatCase.format, base: formatCase.window.start.rawValue) }

    func checkMisalignedGuestAddress<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let (f, _) = try Self.populated(format, base: base)
        let start = base + f.page / 2
        let expected = SLATError.misalignedGuestAddress(GuestPhysicalAddress(start), alignment: f.page)
        Self.expectRejection(f, expected) { batch throws(SLATError) in
            try f.table.map(GuestPhysicalRange(start, size: f.page), to: HostPhysicalAddress(0x80_0000_0000),
                            attributes: LeafAttributes(permissions: .read), context: f.context, batch: &batch, tlb: f.tlb)
        }
        Self.expectRejection(f, expected) { batch throws(SLATError) in
            try f.table.unmap(GuestPhysicalRange(start, size: f.page), context: f.context, batch: &batch, tlb: f.tlb)
        }
        Self.expectRejection(f, expected) { batch throws(SLATError) in
            try f.table.changePermissions(GuestPhysicalRange(start, size: f.page), revoke: .write,
                                          context: f.context, batch: &batch, tlb: f.tlb)
        }
    }

    @Test("A size that is not a whole number of pages is rejected", arguments: FormatCase.allCases)
    func misalignedSize(_ formatCase: FormatCase) throws { try checkMisalignedSize(formatCase.format, base: formatCase.window.start.rawValue) }

    func checkMisalignedSize<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let (f, _) = try Self.populated(format, base: base)
        let size = f.block + f.page / 2
        let expected = SLATError.misalignedSize(size, alignment: f.page)
        Self.expectRejection(f, expected) { batch throws(SLATError) in
            try f.table.map(GuestPhysicalRange(base, size: size), to: HostPhysicalAddress(0x80_0000_0000),
                            attributes: LeafAttributes(permissions: .read), context: f.context, batch: &batch, tlb: f.tlb)
        }
        Self.expectRejection(f, expected) { batch throws(SLATError) in
            try f.table.unmap(GuestPhysicalRange(base, size: size), context: f.context, batch: &batch, tlb: f.tlb)
        }
        Self.expectRejection(f, expected) { batch throws(SLATError) in
            try f.table.changePermissions(GuestPhysicalRange(base, size: size), grant: .write,
                                          context: f.context, batch: &batch, tlb: f.tlb)
        }
    }

    @Test("A range reaching past the input address space is rejected, even when its end overflows 64 bits",
          arguments: FormatCase.allCases)
    func guestRangeOutOfBounds(_ formatCase: FormatCase) throws { try checkOutOfBounds(formatCase.format, base: formatCase.window.start.rawValue) }

    func checkOutOfBounds<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let (f, _) = try Self.populated(format, base: base)
        let limit = format.inputAddressSpaceSize
        let page = f.page
        let ranges = [
            GuestPhysicalRange(limit - page, size: 2 * page),          // one page past the end
            GuestPhysicalRange(limit, size: page),                      // starts at the end
            GuestPhysicalRange(0 &- page, size: page),                  // the last page of 2^64
            GuestPhysicalRange(limit - page, size: 0 &- page),          // start + size wraps past 2^64
            GuestPhysicalRange(0 &- 2 * page, size: 4 * page),          // start past the end, end wraps to 2 pages
        ]
        for range in ranges {
            let expected = SLATError.guestRangeOutOfBounds(range, limit: limit)
            Self.expectRejection(f, expected) { batch throws(SLATError) in
                try f.table.map(range, to: HostPhysicalAddress(0x80_0000_0000), attributes: LeafAttributes(permissions: .read),
                                context: f.context, batch: &batch, tlb: f.tlb)
            }
            Self.expectRejection(f, expected) { batch throws(SLATError) in
                try f.table.unmap(range, context: f.context, batch: &batch, tlb: f.tlb)
            }
            Self.expectRejection(f, expected) { batch throws(SLATError) in
                try f.table.changePermissions(range, revoke: .read, context: f.context, batch: &batch, tlb: f.tlb)
            }
        }
    }

    @Test("The last page of the input address space is accepted", arguments: FormatCase.allCases)
    func lastPageIsInBounds(_ formatCase: FormatCase) throws { try checkLastPage(formatCase.format, base: formatCase.window.start.rawValue) }

    func checkLastPage<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format)
        let last = format.inputAddressSpaceSize - f.page
        try f.map(last, size: f.page, to: 0x80_0000_0000)
        #expect(f.translation(last + 8)?.output == HostPhysicalAddress(0x80_0000_0008))
        try f.changePermissions(last, size: f.page, revoke: .write)
        #expect(f.translation(last)?.attributes.permissions == .read)
        try f.unmap(last, size: f.page)
        #expect(f.table.leaves().isEmpty)
        #expect(f.table.reachableTablePages() == format.rootPages(f.table.root))
    }

    // MARK: Outputs

    @Test("An output address that is not page-aligned is rejected", arguments: FormatCase.allCases)
    func misalignedOutputAddress(_ formatCase: FormatCase) throws { try checkMisalignedOutput(formatCase.format, base: formatCase.window.start.rawValue) }

    func checkMisalignedOutput<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let (f, _) = try Self.populated(format, base: base)
        let output = HostPhysicalAddress(0x80_0000_0000 + f.page / 2)
        Self.expectRejection(f, .misalignedOutputAddress(output, alignment: f.page)) { batch throws(SLATError) in
            try f.table.map(GuestPhysicalRange(base, size: f.page), to: output, attributes: LeafAttributes(permissions: .read),
                            context: f.context, batch: &batch, tlb: f.tlb)
        }
    }

    @Test("An output that does not fit the output address size is rejected, at its start or its end",
          arguments: FormatCase.allCases)
    func outputAddressTooWide(_ formatCase: FormatCase) throws { try checkOutputTooWide(formatCase.format, base: formatCase.window.start.rawValue) }

    func checkOutputTooWide<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let (f, _) = try Self.populated(format, base: base)
        let limit = format.outputAddressLimit
        let bits = format.outputAddressBits
        Self.expectRejection(f, .outputAddressTooWide(HostPhysicalAddress(limit), outputBits: bits)) { batch throws(SLATError) in
            try f.table.map(GuestPhysicalRange(base, size: f.page), to: HostPhysicalAddress(limit),
                            attributes: LeafAttributes(permissions: .read), context: f.context, batch: &batch, tlb: f.tlb)
        }
        // Starts inside, ends one page past the limit: the last byte is named.
        let lastByte = HostPhysicalAddress(limit + f.page - 1)
        Self.expectRejection(f, .outputAddressTooWide(lastByte, outputBits: bits)) { batch throws(SLATError) in
            try f.table.map(GuestPhysicalRange(base, size: 2 * f.page), to: HostPhysicalAddress(limit - f.page),
                            attributes: LeafAttributes(permissions: .read), context: f.context, batch: &batch, tlb: f.tlb)
        }
        // Ending exactly at the limit is fine.
        try f.map(base + 3 * f.block, size: 2 * f.page, to: limit - 2 * f.page)
        #expect(f.translation(base + 3 * f.block + f.page)?.output == HostPhysicalAddress(limit - f.page))
    }

    // MARK: Levels

    @Test("A maximum level below zero or above the root is rejected", arguments: FormatCase.allCases)
    func unsupportedLevel(_ formatCase: FormatCase) throws { try checkUnsupportedLevel(formatCase.format, base: formatCase.window.start.rawValue) }

    func checkUnsupportedLevel<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let (f, _) = try Self.populated(format, base: base)
        for level in [-1, format.rootLevel + 1, Int.min] {
            Self.expectRejection(f, .unsupportedLevel(level)) { batch throws(SLATError) in
                try f.table.map(GuestPhysicalRange(base, size: f.block), to: HostPhysicalAddress(0x80_0000_0000),
                                attributes: LeafAttributes(permissions: .read), maximumLevel: level,
                                context: f.context, batch: &batch, tlb: f.tlb)
            }
        }
    }

    // MARK: Attributes

    @Test("EPT rejects a write-only mapping")
    func eptWriteOnlyMapping() throws {
        let (f, base) = try Self.populated(try ExtendedPageTableFormat(levelCount: 4))
        Self.expectRejection(f, .unsupportedPermissions(.write)) { batch throws(SLATError) in
            try f.table.map(GuestPhysicalRange(base, size: f.page), to: HostPhysicalAddress(0x80_0000_0000),
                            attributes: LeafAttributes(permissions: .write), context: f.context, batch: &batch, tlb: f.tlb)
        }
    }

    @Test("A single execute right is rejected without mode-based execute (EPT) or FEAT_XNX (stage 2)",
          arguments: FormatCase.allCases)
    func splitExecuteMapping(_ formatCase: FormatCase) throws { try checkSplitExecute(formatCase.format, base: formatCase.window.start.rawValue) }

    func checkSplitExecute<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let (f, _) = try Self.populated(format, base: base)
        for permissions: Permissions in [[.read, .executePrivileged], [.read, .executeUser]] {
            Self.expectRejection(f, .unsupportedPermissions(permissions)) { batch throws(SLATError) in
                try f.table.map(GuestPhysicalRange(base, size: f.page), to: HostPhysicalAddress(0x80_0000_0000),
                                attributes: LeafAttributes(permissions: permissions), context: f.context, batch: &batch, tlb: f.tlb)
            }
        }
        // Granting one execute right alone to a leaf without execute.
        let readOnlyPage = base + 2 * f.block
        Self.expectRejection(f, .unsupportedPermissions([.read, .executeUser])) { batch throws(SLATError) in
            try f.table.changePermissions(GuestPhysicalRange(readOnlyPage, size: f.page), grant: .executeUser,
                                          context: f.context, batch: &batch, tlb: f.tlb)
        }
    }

    @Test("EPT rejects revoking read from read-write leaves (write without read)")
    func eptRevokeReadFromReadWrite() throws {
        let (f, base) = try Self.populated(try ExtendedPageTableFormat(levelCount: 4))
        // The block is read-write: revoking read would leave write alone.
        Self.expectRejection(f, .unsupportedPermissions(.write)) { batch throws(SLATError) in
            try f.table.changePermissions(GuestPhysicalRange(base, size: f.block + f.page), revoke: .read,
                                          context: f.context, batch: &batch, tlb: f.tlb)
        }
        // From a read-only leaf it is fine.
        try f.changePermissions(base + 2 * f.block, size: f.page, revoke: .read)
        #expect(f.translation(base + 2 * f.block)?.attributes.permissions == [])
    }

    @Test("EPT rejects granting write to execute-only leaves, and changes none of the range")
    func eptGrantWriteToExecuteOnly() throws {
        let (f, base) = try Self.populated(try ExtendedPageTableFormat(levelCount: 4))
        let start = base + 3 * f.block
        try f.map(start, size: f.page, to: 0xB0_0000_0000, permissions: .read)
        try f.map(start + f.page, size: f.page, to: 0xB0_0000_1000, permissions: .execute)
        // The first leaf could take write; the second cannot: nothing changes.
        Self.expectRejection(f, .unsupportedPermissions([.write, .execute])) { batch throws(SLATError) in
            try f.table.changePermissions(GuestPhysicalRange(start, size: 2 * f.page), grant: .write,
                                          context: f.context, batch: &batch, tlb: f.tlb)
        }
        #expect(f.translation(start)?.attributes.permissions == .read)
    }

    @Test("Memory types a format cannot encode are rejected")
    func unsupportedMemoryType() throws {
        let (ept, eptBase) = try Self.populated(try ExtendedPageTableFormat(levelCount: 4))
        Self.expectRejection(ept, .unsupportedMemoryType(.device)) { batch throws(SLATError) in
            try ept.table.map(GuestPhysicalRange(eptBase, size: ept.page), to: HostPhysicalAddress(0x80_0000_0000),
                              attributes: LeafAttributes(permissions: .read, memoryType: .device),
                              context: ept.context, batch: &batch, tlb: ept.tlb)
        }
        let (s2, s2Base) = try Self.populated(try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40),
                                              base: FormatCase.stageTwo4KiB40.window.start.rawValue)
        Self.expectRejection(s2, .unsupportedMemoryType(.writeProtected)) { batch throws(SLATError) in
            try s2.table.map(GuestPhysicalRange(s2Base, size: s2.page), to: HostPhysicalAddress(0x80_0000_0000),
                             attributes: LeafAttributes(permissions: .read, memoryType: .writeProtected),
                             context: s2.context, batch: &batch, tlb: s2.tlb)
        }
    }

    @Test("Stage 2 rejects a dirty flag", arguments: [FormatCase.stageTwo4KiB40, .stageTwo16KiB40, .stageTwo64KiB42])
    func unsupportedDirtyFlag(_ formatCase: FormatCase) throws { try checkDirtyFlag(formatCase.format, base: formatCase.window.start.rawValue) }

    func checkDirtyFlag<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let (f, _) = try Self.populated(format, base: base)
        Self.expectRejection(f, .unsupportedDirtyFlag) { batch throws(SLATError) in
            try f.table.map(GuestPhysicalRange(base, size: f.page), to: HostPhysicalAddress(0x80_0000_0000),
                            attributes: LeafAttributes(permissions: .readWrite, dirty: true),
                            context: f.context, batch: &batch, tlb: f.tlb)
        }
    }

    @Test("Software bits wider than the format's field are rejected", arguments: FormatCase.allCases)
    func softwareBitsOutOfRange(_ formatCase: FormatCase) throws { try checkSoftwareBits(formatCase.format, base: formatCase.window.start.rawValue) }

    func checkSoftwareBits<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let (f, _) = try Self.populated(format, base: base)
        let width = format.softwareBitCount
        let bits = UInt16(1) << UInt16(width)
        Self.expectRejection(f, .softwareBitsOutOfRange(bits, width: width)) { batch throws(SLATError) in
            try f.table.map(GuestPhysicalRange(base, size: f.page), to: HostPhysicalAddress(0x80_0000_0000),
                            attributes: LeafAttributes(permissions: .read, softwareBits: bits),
                            context: f.context, batch: &batch, tlb: f.tlb)
        }
        // The widest value that fits is kept bit-exactly.
        try f.map(base + 3 * f.block, size: f.page, to: 0x80_0000_0000)
        var batch = TLBFlushBatch()
        try f.table.map(GuestPhysicalRange(base + 3 * f.block, size: f.page), to: HostPhysicalAddress(0x80_0000_0000),
                        attributes: LeafAttributes(permissions: .read, softwareBits: bits - 1),
                        context: f.context, batch: &batch, tlb: f.tlb)
        f.table.settle(batch, tlb: f.tlb, mode: .exclusive)
        #expect(f.translation(base + 3 * f.block)?.attributes.softwareBits == bits - 1)
    }

    // MARK: Memory and slots

    @Test("A map that needs more table pages than exist is rejected before it changes anything")
    func outOfTableMemory() throws {
        let format = try ExtendedPageTableFormat(levelCount: 4)
        let (f, base) = try Self.populated(format, pages: 12)
        let free = f.arena.freePageCount
        let cached = f.context.pageCache.count
        // 2 GiB of 4 KiB pages: 1024 + 2 + 1 tables at most.
        Self.expectRejection(f, .outOfTableMemory(needed: 1027 - cached, available: free)) { batch throws(SLATError) in
            try f.table.map(GuestPhysicalRange(base, size: 2 << 30), to: HostPhysicalAddress(0x80_0000_0000),
                            attributes: LeafAttributes(permissions: .read), maximumLevel: 0,
                            context: f.context, batch: &batch, tlb: f.tlb)
        }
        // The same range in 1 GiB leaves needs no table at all... and fits.
        try f.map(base, size: 2 << 30, to: 0x80_0000_0000)
        #expect(f.table.leaves().map(\.level) == [2, 2])
    }

    @Test("A table page arena whose page size is not the format's granule is rejected")
    func unsupportedGranule() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 64, prefault: false)
        #expect(throws: SLATError.unsupportedGranule(4096)) {
            _ = try PageTable(format: try StageTwoFormat(granule: .size16KiB, inputAddressBits: 40), memory: arena)
        }
        let big = try TableArena(pageSize: 65536, pageCount: 4, prefault: false)
        #expect(throws: SLATError.unsupportedGranule(65536)) {
            _ = try PageTable(format: try ExtendedPageTableFormat(levelCount: 4), memory: big)
        }
        #expect(arena.allocatedPageCount == 0 && big.allocatedPageCount == 0)
    }

    @Test("A table needs a reader slot and room for its (concatenated) root")
    func tableCreationErrors() throws {
        let arena = try TableArena(pageSize: 16384, pageCount: 8, prefault: false)
        let format = try StageTwoFormat(granule: .size16KiB, inputAddressBits: 40)
        #expect(throws: SLATError.unsupportedReaderSlotCount(0)) {
            _ = try PageTable(format: format, memory: arena, readerSlots: 0)
        }
        #expect(throws: SLATError.outOfTableMemory(needed: 16, available: 8)) {
            _ = try PageTable(format: format, memory: arena)
        }
        #expect(arena.allocatedPageCount == 0)
    }

    @Test("Reader slot counts outside 1...8192 are refused by every owner of slots, not trapped")
    func readerSlotCountsAreChecked() throws {
        let arena = try TableArena(pageCount: 4)
        for count in [0, -1, ReaderSlotWords.maximumSlotCount + 1, Int.max] {
            #expect(throws: SLATError.unsupportedReaderSlotCount(count)) { _ = try ReaderSlotWords(slotCount: count) }
            #expect(throws: SLATError.unsupportedReaderSlotCount(count)) { _ = try PerSlotReaderWriterLock(slotCount: count) }
            #expect(throws: SLATError.unsupportedReaderSlotCount(count)) { _ = try EpochReclaimer(memory: arena, slotCount: count) }
            #expect(throws: SLATError.unsupportedReaderSlotCount(count)) {
                _ = try PageTable(format: try ExtendedPageTableFormat(levelCount: 4), memory: arena,
                                  root: HostPhysicalAddress(0), readerSlots: count)
            }
        }
        #expect(try PerSlotReaderWriterLock(slotCount: ReaderSlotWords.maximumSlotCount).slotCount == 8192)
    }

    @Test("A shared operation with a reader slot outside the reclaimer's is rejected", arguments: [4, -1])
    func readerSlotOutOfRange(_ slot: Int) throws {
        let (f, base) = try Self.populated(try ExtendedPageTableFormat(levelCount: 4))
        let stranger = PageTableContext(readerSlot: slot)
        let slots = f.table.reclaimer.slotCount
        #expect(slots == 4)
        let range = GuestPhysicalRange(base, size: f.page)
        let expected = SLATError.readerSlotOutOfRange(slot, slots: slots)
        func reject(_ body: (inout TLBFlushBatch) throws(SLATError) -> Void) {
            Self.expectRejection(f, expected) { batch throws(SLATError) in
                // Pages may be reserved before the slot is checked: they
                // sit in the stranger's cache, never in the tables.
                defer { stranger.pageCache.release(to: f.arena) }
                try body(&batch)
            }
        }
        reject { batch throws(SLATError) in
            try f.table.map(range, to: HostPhysicalAddress(0x80_0000_0000), attributes: LeafAttributes(permissions: .read),
                            mode: .shared, context: stranger, batch: &batch, tlb: f.tlb)
        }
        reject { batch throws(SLATError) in
            try f.table.unmap(range, mode: .shared, context: stranger, batch: &batch, tlb: f.tlb)
        }
        reject { batch throws(SLATError) in
            try f.table.changePermissions(range, revoke: .write, mode: .shared, context: stranger, batch: &batch, tlb: f.tlb)
        }
        // Granting write makes EPT pre-check the leaves: that walk needs the slot too.
        reject { batch throws(SLATError) in
            try f.table.changePermissions(range, grant: .write, mode: .shared, context: stranger, batch: &batch, tlb: f.tlb)
        }
    }
}
