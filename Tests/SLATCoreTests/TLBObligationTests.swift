import Testing
import SLATArm64
import SLATCore
import SLATx86

/// What the range operations owe the TLB (rule 3 of Docs/concurrency.md) and how
/// settling pays it: removing or reducing a translation owes an
/// invalidation, adding one owes none, pages are freed only after the
/// flush, and stage 2 breaks before it makes (rule 4).
@Suite struct TLBObligationTests {
    static let stageTwoCases: [FormatCase] = [.stageTwo4KiB40, .stageTwo16KiB40, .stageTwo64KiB42]
    static let eptCases: [FormatCase] = [.ept4, .ept5]

    // MARK: Removing or reducing owes

    @Test("Unmapping a page owes an invalidation of it", arguments: FormatCase.allCases)
    func unmappingOwesAnInvalidation(_ formatCase: FormatCase) throws {
        try checkUnmappingOwes(formatCase.format, base: formatCase.window.start.rawValue)
    }

    func checkUnmappingOwes<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format)
        try f.map(base, size: 2 * f.page, to: 0x80_0000_0000, maximumLevel: 0)
        f.tlb.clearLog()
        var batch = TLBFlushBatch()
        try f.table.unmap(GuestPhysicalRange(base, size: f.page), context: f.context, batch: &batch, tlb: f.tlb)
        let owes = batch.requests.owesInvalidation
        f.table.settle(batch, tlb: f.tlb, mode: .exclusive)
        #expect(owes)
        #expect(f.tlb.log == [.address(GuestPhysicalAddress(base), level: 0)])
    }

    @Test("Revoking a permission owes an invalidation", arguments: FormatCase.allCases)
    func revokingOwesAnInvalidation(_ formatCase: FormatCase) throws {
        try checkRevokingOwes(formatCase.format, base: formatCase.window.start.rawValue)
    }

    func checkRevokingOwes<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format)
        try f.map(base, size: f.page, to: 0x80_0000_0000, permissions: .readWrite)
        f.tlb.cache(f.table.leaves())
        f.tlb.clearLog()
        var batch = TLBFlushBatch()
        try f.table.changePermissions(GuestPhysicalRange(base, size: f.page), revoke: .write,
                                      context: f.context, batch: &batch, tlb: f.tlb)
        let owes = batch.requests.owesInvalidation
        f.table.settle(batch, tlb: f.tlb, mode: .exclusive)
        #expect(owes)
        #expect(!f.tlb.log.isEmpty)
        #expect(f.tlb.cached.isEmpty, "the read-write translation survived the flush")
        #expect(f.translation(base)?.attributes.permissions == .read)
    }

    @Test("Remapping a page to another output owes an invalidation", arguments: FormatCase.allCases)
    func remappingElsewhereOwesAnInvalidation(_ formatCase: FormatCase) throws {
        try checkRemappingOwes(formatCase.format, base: formatCase.window.start.rawValue)
    }

    func checkRemappingOwes<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format)
        try f.map(base, size: f.page, to: 0x80_0000_0000)
        f.tlb.cache(f.table.leaves())
        var batch = TLBFlushBatch()
        try f.table.map(GuestPhysicalRange(base, size: f.page), to: HostPhysicalAddress(0x90_0000_0000),
                        attributes: LeafAttributes(permissions: .readWrite), context: f.context, batch: &batch, tlb: f.tlb)
        let owes = batch.requests.owesInvalidation
        f.table.settle(batch, tlb: f.tlb, mode: .exclusive)
        #expect(owes)
        #expect(f.tlb.cached.isEmpty, "the old translation survived the flush")
        #expect(f.translation(base)?.output == HostPhysicalAddress(0x90_0000_0000))
    }

    // MARK: Adding owes nothing

    @Test("Mapping into empty space owes nothing", arguments: FormatCase.allCases)
    func mappingIntoEmptySpaceOwesNothing(_ formatCase: FormatCase) throws {
        try checkMappingIntoEmptySpaceOwesNothing(formatCase.format, base: formatCase.window.start.rawValue)
    }

    func checkMappingIntoEmptySpaceOwesNothing<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format)
        for (offset, maximumLevel) in [(UInt64(0), 0 as Int?), (f.block, nil), (3 * f.block + f.page, 0)] {
            var batch = TLBFlushBatch()
            try f.table.map(GuestPhysicalRange(base + offset, size: offset == f.block ? f.block : f.page),
                            to: HostPhysicalAddress(0x80_0000_0000 + offset),
                            attributes: LeafAttributes(permissions: .readWrite), maximumLevel: maximumLevel,
                            context: f.context, batch: &batch, tlb: f.tlb)
            let empty = batch.isEmpty
            f.table.settle(batch, tlb: f.tlb, mode: .exclusive)
            #expect(empty, "mapping at +\(offset) owes something")
        }
        #expect(f.tlb.log.isEmpty)
        #expect(f.table.leaves().count == 3)
    }

    @Test("Granting a permission owes nothing", arguments: FormatCase.allCases)
    func grantingOwesNothing(_ formatCase: FormatCase) throws {
        try checkGrantingOwesNothing(formatCase.format, base: formatCase.window.start.rawValue)
    }

    func checkGrantingOwesNothing<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format)
        try f.map(base, size: f.page, to: 0x80_0000_0000, permissions: .read)
        try f.map(base + f.block, size: f.block, to: 0x80_0000_0000 + f.block, permissions: .read)
        f.tlb.clearLog()
        var batch = TLBFlushBatch()
        try f.table.changePermissions(GuestPhysicalRange(base, size: 2 * f.block), grant: [.write, .execute],
                                      context: f.context, batch: &batch, tlb: f.tlb)
        let empty = batch.isEmpty
        f.table.settle(batch, tlb: f.tlb, mode: .exclusive)
        #expect(empty)
        #expect(f.tlb.log.isEmpty)
        #expect(f.translation(base)?.attributes.permissions == .all)
        #expect(f.translation(base + f.block)?.attributes.permissions == .all)
    }

    @Test("Mapping what is already mapped changes nothing and owes nothing", arguments: FormatCase.allCases)
    func identicalRemapOwesNothing(_ formatCase: FormatCase) throws {
        try checkIdenticalRemap(formatCase.format, base: formatCase.window.start.rawValue)
    }

    func checkIdenticalRemap<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format)
        try f.map(base, size: 2 * f.block + 3 * f.page, to: 0x80_0000_0000)
        let leaves = f.table.leaves()
        let tables = f.table.reachableTablePages()
        f.tlb.clearLog()
        try f.map(base, size: 2 * f.block + 3 * f.page, to: 0x80_0000_0000)
        #expect(f.tlb.log.isEmpty)
        #expect(f.table.leaves() == leaves)
        #expect(f.table.reachableTablePages() == tables)
    }

    // MARK: Huge leaves

    enum PartialChange: String, CaseIterable, CustomTestStringConvertible {
        case unmap, revoke, remap
        var testDescription: String { rawValue }
    }

    @Test("Changing one page of a huge leaf invalidates the huge translation",
          arguments: FormatCase.allCases, PartialChange.allCases)
    func changingPartOfAHugeLeafInvalidatesIt(_ formatCase: FormatCase, _ change: PartialChange) throws {
        try checkPartialChange(formatCase.format, base: formatCase.window.start.rawValue, change: change)
    }

    func checkPartialChange<F: PageTableFormat>(_ format: F, base: UInt64, change: PartialChange) throws {
        let f = try TableFixture(format)
        let huge = format.leafLevels.last!
        let size = format.entrySize(atLevel: huge)
        try f.map(base, size: size, to: 0x80_0000_0000)
        f.tlb.cache(f.table.leaves())
        #expect(f.tlb.cached.map(\.level) == [huge])
        let target = base + size / 2 + f.page
        switch change {
        case .unmap: try f.unmap(target, size: f.page)
        case .revoke: try f.changePermissions(target, size: f.page, revoke: .write)
        case .remap: try f.map(target, size: f.page, to: 0x90_0000_0000)
        }
        #expect(f.tlb.cached.isEmpty, "a TLB may still use the level-\(huge) translation; invalidations: \(f.tlb.log)")
        // Everything else in the leaf still translates as before.
        #expect(f.translation(base)?.output == HostPhysicalAddress(0x80_0000_0000))
        #expect(f.translation(target + f.page)?.output == HostPhysicalAddress(0x80_0000_0000 + size / 2 + 2 * f.page))
    }

    // MARK: Settling

    @Test("Settling issues each owed invalidation once, up to eight addresses")
    func settleIssuesTheOwedCounts() throws {
        let f = try TableFixture(ExtendedPageTableFormat(levelCount: 4))
        let base: UInt64 = 0x4000_0000
        try f.map(base, size: 32 * f.page, to: 0x80_0000_0000, maximumLevel: 0)
        let tlb = CountingTLB()
        var batch = TLBFlushBatch()
        for index: UInt64 in [1, 3, 5] {
            try f.table.unmap(GuestPhysicalRange(base + index * f.page, size: f.page), context: f.context, batch: &batch, tlb: tlb)
        }
        f.table.settle(batch, tlb: tlb, mode: .exclusive)
        #expect(tlb.counts == TLBInvalidationCounts(addresses: 3, ranges: 0, contexts: 0))

        let degraded = CountingTLB()
        var big = TLBFlushBatch()
        try f.table.unmap(GuestPhysicalRange(base + 8 * f.page, size: 9 * f.page), context: f.context, batch: &big, tlb: degraded)
        f.table.settle(big, tlb: degraded, mode: .exclusive)
        #expect(degraded.counts == TLBInvalidationCounts(addresses: 0, ranges: 1, contexts: 0))
    }

    @Test("Settling flushes before it frees the unlinked tables", arguments: FormatCase.allCases)
    func settleFreesPagesOnlyAfterTheFlush(_ formatCase: FormatCase) throws {
        try checkSettleOrder(formatCase.format, base: formatCase.window.start.rawValue)
    }

    func checkSettleOrder<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format)
        try f.map(base, size: f.page, to: 0x80_0000_0000)
        let withTables = f.arena.allocatedPageCount - f.context.pageCache.count
        let tables = withTables - format.rootTableCount
        #expect(tables == format.rootLevel)
        var countsAtFlush: [Int] = []
        f.tlb.onInvalidate = { _ in countsAtFlush.append(f.arena.allocatedPageCount - f.context.pageCache.count) }
        var batch = TLBFlushBatch()
        try f.table.unmap(GuestPhysicalRange(base, size: f.page), context: f.context, batch: &batch, tlb: f.tlb)
        #expect(batch.pendingPageCount == tables)
        #expect(f.arena.allocatedPageCount - f.context.pageCache.count == withTables, "freed before the flush")
        f.table.settle(batch, tlb: f.tlb, mode: .exclusive)
        #expect(!countsAtFlush.isEmpty)
        #expect(countsAtFlush.allSatisfy { $0 == withTables }, "a page was freed before an invalidation: \(countsAtFlush)")
        #expect(f.arena.allocatedPageCount - f.context.pageCache.count == format.rootTableCount)
    }

    @Test("Settling a shared batch frees its pages only after every earlier reader has left")
    func sharedSettleWaitsForReaders() throws {
        let f = try TableFixture(ExtendedPageTableFormat(levelCount: 4))
        try f.map(0x4000_0000, size: f.page, to: 0x80_0000_0000)
        let reader = PageTableContext(readerSlot: 1)
        f.table.reclaimer.enterReadSection(slot: reader.readerSlot)
        var batch = TLBFlushBatch()
        try f.table.unmap(GuestPhysicalRange(0x4000_0000, size: f.page), mode: .shared, context: f.context,
                          batch: &batch, tlb: f.tlb)
        let detached = f.table.reachableTablePages().count
        #expect(detached == 1)
        let allocated = f.arena.allocatedPageCount
        f.table.settle(batch, tlb: f.tlb, mode: .shared)
        for _ in 0..<4 { f.table.reclaimer.reclaim() }
        #expect(f.arena.allocatedPageCount == allocated, "freed while a reader could still hold it")
        #expect(f.table.reclaimer.pendingCount == 3)
        f.table.reclaimer.leaveReadSection(slot: reader.readerSlot)
        f.table.reclaimer.synchronize()
        #expect(f.arena.allocatedPageCount == allocated - 3)
        #expect(f.table.reclaimer.freedCount == 3)
    }

    // MARK: Break-before-make and merges

    @Test("Stage 2 splits a block by breaking it and invalidating it by address first", arguments: stageTwoCases)
    func stageTwoSplitBreaksBeforeMake(_ formatCase: FormatCase) throws {
        try checkStageTwoSplit(formatCase.format, base: formatCase.window.start.rawValue)
    }

    func checkStageTwoSplit<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format)
        try f.map(base, size: f.block, to: 0x80_0000_0000)
        f.tlb.clearLog()
        var brokenDuringInvalidation: [Bool] = []
        f.tlb.onInvalidate = { _ in brokenDuringInvalidation.append(f.translation(base) == nil) }
        var batch = TLBFlushBatch()
        try f.table.unmap(GuestPhysicalRange(base + f.page, size: f.page), context: f.context, batch: &batch, tlb: f.tlb)
        #expect(f.tlb.log == [.address(GuestPhysicalAddress(base), level: 1)], "the block is invalidated during the split")
        #expect(brokenDuringInvalidation == [true], "the block entry was still valid while it was invalidated")
        f.table.settle(batch, tlb: f.tlb, mode: .exclusive)
        #expect(f.tlb.log.last == .address(GuestPhysicalAddress(base + f.page), level: 0))
        #expect(f.translation(base)?.level == 0)
    }

    @Test("Stage 2 replaces a valid leaf by breaking it first", arguments: stageTwoCases)
    func stageTwoReplaceBreaksBeforeMake(_ formatCase: FormatCase) throws {
        try checkStageTwoReplace(formatCase.format, base: formatCase.window.start.rawValue)
    }

    func checkStageTwoReplace<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format)
        try f.map(base, size: f.page, to: 0x80_0000_0000)
        f.tlb.clearLog()
        var seen: [TranslationResult] = []
        f.tlb.onInvalidate = { _ in seen.append(f.table.translate(GuestPhysicalAddress(base))) }
        var batch = TLBFlushBatch()
        try f.table.map(GuestPhysicalRange(base, size: f.page), to: HostPhysicalAddress(0x90_0000_0000),
                        attributes: LeafAttributes(permissions: .readWrite), context: f.context, batch: &batch, tlb: f.tlb)
        #expect(f.tlb.log == [.address(GuestPhysicalAddress(base), level: 0)])
        #expect(seen.count == 1 && seen[0].translation == nil, "the old leaf was valid during its invalidation")
        f.table.settle(batch, tlb: f.tlb, mode: .exclusive)
        #expect(f.translation(base)?.output == HostPhysicalAddress(0x90_0000_0000))
    }

    @Test("EPT replaces a leaf in place and defers its invalidation to the batch", arguments: eptCases)
    func eptReplacesInPlace(_ formatCase: FormatCase) throws {
        try checkEPTReplace(formatCase.format, base: formatCase.window.start.rawValue)
    }

    func checkEPTReplace<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format)
        try f.map(base, size: f.page, to: 0x80_0000_0000)
        f.tlb.clearLog()
        var batch = TLBFlushBatch()
        try f.table.map(GuestPhysicalRange(base, size: f.page), to: HostPhysicalAddress(0x90_0000_0000),
                        attributes: LeafAttributes(permissions: .readWrite), context: f.context, batch: &batch, tlb: f.tlb)
        #expect(f.tlb.log.isEmpty)
        f.table.settle(batch, tlb: f.tlb, mode: .exclusive)
        #expect(f.tlb.log == [.address(GuestPhysicalAddress(base), level: 0)])
    }

    @Test("A stage-2 table→block merge flushes the whole context once, while the entry is broken (no TLB conflict abort)",
          arguments: stageTwoCases)
    func stageTwoMergeFlushesTheContextOnce(_ formatCase: FormatCase) throws {
        try checkStageTwoMerge(formatCase.format, base: formatCase.window.start.rawValue)
    }

    func checkStageTwoMerge<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format)
        try f.map(base, size: f.block, to: 0x80_0000_0000, maximumLevel: 0)
        #expect(f.table.leaves().count == format.entriesPerTable)
        let tables = f.table.reachableTablePages().count
        let tlb = RecordingTLB()
        var brokenDuringFlush: [Bool] = []
        tlb.onInvalidate = { _ in brokenDuringFlush.append(f.translation(base) == nil) }
        var batch = TLBFlushBatch()
        try f.table.map(GuestPhysicalRange(base, size: f.block), to: HostPhysicalAddress(0x80_0000_0000),
                        attributes: LeafAttributes(permissions: .readWrite), context: f.context, batch: &batch, tlb: tlb)
        #expect(batch.pendingPageCount == 1)
        f.table.settle(batch, tlb: tlb, mode: .exclusive)
        #expect(tlb.counts == TLBInvalidationCounts(addresses: 0, ranges: 0, contexts: 1))
        #expect(brokenDuringFlush == [true])
        #expect(f.table.leaves().map(\.level) == [1])
        #expect(f.table.reachableTablePages().count == tables - 1)
        #expect(f.arena.allocatedPageCount == f.table.reachableTablePages().count + f.context.pageCache.count,
                "the merged table page was not freed")
    }

    @Test("An EPT table→block merge owes one range invalidation of the block", arguments: eptCases)
    func eptMergeOwesARange(_ formatCase: FormatCase) throws {
        try checkEPTMerge(formatCase.format, base: formatCase.window.start.rawValue)
    }

    func checkEPTMerge<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format)
        try f.map(base, size: f.block, to: 0x80_0000_0000, maximumLevel: 0)
        f.tlb.clearLog()
        try f.map(base, size: f.block, to: 0x80_0000_0000)
        #expect(f.tlb.log == [.range(GuestPhysicalRange(base, size: f.block))])
        #expect(f.table.leaves().map(\.level) == [1])
    }

    @Test("Stage 2: remapping a live leaf with other permissions only is made in place, without break-before-make")
    func stageTwoPermissionOnlyRemapDoesNotBreak() throws {
        let f = try TableFixture(try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40))
        try f.map(0, size: 0x1000, to: 0x8000_0000, permissions: .readWrite, maximumLevel: 0)
        var immediate: [Invalidation] = []
        var batch = TLBFlushBatch()
        f.tlb.onInvalidate = { immediate.append($0) }
        try f.table.map(GuestPhysicalRange(0, size: 0x1000), to: HostPhysicalAddress(0x8000_0000),
                        attributes: LeafAttributes(permissions: .read), maximumLevel: 0,
                        context: f.context, batch: &batch, tlb: f.tlb)
        #expect(immediate.isEmpty, "no break-before-make invalidation for a permission change")
        let owes = !batch.isEmpty
        #expect(owes, "the lost write permission is still owed")
        f.table.settle(batch, tlb: f.tlb, mode: .exclusive)
        #expect(f.translation(0)?.attributes.permissions == .read)
        immediate = []
        // A new output address does break first.
        var remap = TLBFlushBatch()
        try f.table.map(GuestPhysicalRange(0, size: 0x1000), to: HostPhysicalAddress(0x9000_0000),
                        attributes: LeafAttributes(permissions: .read), maximumLevel: 0,
                        context: f.context, batch: &remap, tlb: f.tlb)
        #expect(immediate == [.address(GuestPhysicalAddress(0), level: 0)], "break, invalidate, then make")
        f.table.settle(remap, tlb: f.tlb, mode: .exclusive)
        f.tlb.onInvalidate = nil
    }
}
