import SLATCore
import SLATx86
import Testing

/// A caller's own format that forwards to EPT but claims another geometry.
private struct MisshapenFormat: PageTableFormat {
    let base: ExtendedPageTableFormat
    var rootLevel: Int
    var bitsPerLevel: Int

    var granuleShift: Int { base.granuleShift }
    var rootTableCount: Int { base.rootTableCount }
    var inputAddressBits: Int { base.inputAddressBits }
    var outputAddressBits: Int { base.outputAddressBits }
    var softwareBitCount: Int { base.softwareBitCount }
    var requiresBreakBeforeMake: Bool { base.requiresBreakBeforeMake }
    func architecturalLevel(_ level: Int) -> Int { base.architecturalLevel(level) }
    func canHoldLeaf(atLevel level: Int) -> Bool { base.canHoldLeaf(atLevel: level) }
    var frozenEntry: UInt64 { base.frozenEntry }
    func isPresent(_ entry: UInt64, atLevel level: Int) -> Bool { base.isPresent(entry, atLevel: level) }
    func isTable(_ entry: UInt64, atLevel level: Int) -> Bool { base.isTable(entry, atLevel: level) }
    func tableEntry(child: HostPhysicalAddress) -> UInt64 { base.tableEntry(child: child) }
    func childTable(of entry: UInt64) -> HostPhysicalAddress { base.childTable(of: entry) }
    func childTableIfTable(_ entry: UInt64, atLevel level: Int) -> HostPhysicalAddress? {
        base.childTableIfTable(entry, atLevel: level)
    }
    static var testsTablesFirst: Bool { ExtendedPageTableFormat.testsTablesFirst }
    func validate(_ attributes: LeafAttributes) throws(SLATError) { try base.validate(attributes) }
    func leafEntry(output: HostPhysicalAddress, attributes: LeafAttributes, atLevel level: Int) -> UInt64 {
        base.leafEntry(output: output, attributes: attributes, atLevel: level)
    }
    func outputAddress(ofLeaf entry: UInt64, atLevel level: Int) -> HostPhysicalAddress {
        base.outputAddress(ofLeaf: entry, atLevel: level)
    }
    func attributes(ofLeaf entry: UInt64, atLevel level: Int) -> LeafAttributes { base.attributes(ofLeaf: entry, atLevel: level) }
    func changingPermissions(ofLeaf entry: UInt64, grant: Permissions, revoke: Permissions) -> UInt64 {
        base.changingPermissions(ofLeaf: entry, grant: grant, revoke: revoke)
    }
    func permissions(ofLeaf entry: UInt64) -> Permissions { base.permissions(ofLeaf: entry) }
    func permissions(ofTable entry: UInt64, atLevel level: Int) -> Permissions { base.permissions(ofTable: entry, atLevel: level) }
    func leafEntry(_ entry: UInt64, advancedBy bytes: UInt64) -> UInt64 { base.leafEntry(entry, advancedBy: bytes) }
    func splitLeaf(_ entry: UInt64, fromLevel level: Int) -> UInt64 { base.splitLeaf(entry, fromLevel: level) }
    func isVolatile(_ entry: UInt64, atLevel level: Int) -> Bool { base.isVolatile(entry, atLevel: level) }
    func permissionMasks(grant: Permissions, revoke: Permissions) -> (set: UInt64, clear: UInt64)? {
        base.permissionMasks(grant: grant, revoke: revoke)
    }
}

/// A caller's `PageTableFormat` whose geometry SLAT's walks cannot follow is
/// refused with a typed error before any walk.
@Suite("Format geometry")
struct FormatGeometryTests {
    @Test("A format of seven levels is refused with unsupportedLevelCount, new root or adopted")
    func tooManyLevelsRefused() throws {
        let format = MisshapenFormat(base: try ExtendedPageTableFormat(levelCount: 4), rootLevel: 6, bitsPerLevel: 9)
        let arena = try TableArena(pageCount: 4)
        #expect(throws: SLATError.unsupportedLevelCount(7)) { _ = try PageTable(format: format, memory: arena) }
        #expect(throws: SLATError.unsupportedLevelCount(7)) {
            _ = try PageTable(format: format, memory: arena, root: HostPhysicalAddress(0))
        }
        #expect(arena.allocatedPageCount == 0)
    }

    @Test("A format resolving other than granuleShift − 3 bits per table is refused with unsupportedGranule")
    func wrongBitsPerLevelRefused() throws {
        let format = MisshapenFormat(base: try ExtendedPageTableFormat(levelCount: 4), rootLevel: 3, bitsPerLevel: 10)
        #expect(throws: SLATError.unsupportedGranule(4096)) { _ = try PageTable(format: format, memory: try TableArena(pageCount: 4)) }
    }

    @Test("SLAT's own formats pass the geometry check")
    func shippedFormatsPass() throws {
        try PageTable<ExtendedPageTableFormat, TableArena>.checkGeometry(of: try ExtendedPageTableFormat(levelCount: 5))
    }

    @Test("A run of contiguous table pages that is not a power of two is refused with unsupportedPageRun")
    func contiguousRunMustBeAPowerOfTwo() throws {
        let arena = try TableArena(pageCount: 16)
        for count in [0, -2, 3, 12] {
            #expect(throws: SLATError.unsupportedPageRun(count)) { _ = try arena.allocateContiguousPages(count) }
        }
        #expect(arena.allocatedPageCount == 0)
        _ = try arena.allocateContiguousPages(4)
        #expect(arena.allocatedPageCount == 4)
    }

    @Test("A resolved page's block of a size above its maximum is the maximum's block")
    func resolvedBlockClampsToTheMaximum() throws {
        let memslot = Memslot(id: 1, baseFrame: GuestFrameNumber(0), pageCount: 0x10_0000, hostAddress: HostVirtualAddress(0x7000_0000_0000))
        let page = ResolvedGuestPage(frame: GuestFrameNumber(0x1234), memslot: memslot, hostAddress: HostVirtualAddress(0x7000_0123_4000),
                                     hostFrame: HostFrameNumber(0x8_1234), hostMappingSize: .size2M, maximumMappingSize: .size2M,
                                     writable: true, dirtyLogging: false, sequence: InvalidationSequence(0))
        #expect(page.block(.size1G) == page.block(.size2M))
        #expect(page.block(.size2M) == GuestFrameRange(start: GuestFrameNumber(0x1200), count: 512))
        #expect(page.blockHostFrame(.size1G) == HostFrameNumber(0x8_1200))
    }
}
