import Testing
import SLATCore
import SLATx86

/// Which leaves a mapping is made of, what a walk reports, and how splits
/// and merges keep every other translation as it was.
@Suite struct MappingShapeTests {
    static let kib4: UInt64 = 0x1000
    static let mib2: UInt64 = 0x20_0000
    static let gib1: UInt64 = 0x4000_0000

    @Test("A range two blocks long, block-aligned, with a congruent output maps as two block leaves",
          arguments: FormatCase.allCases)
    func congruentBlocks(_ formatCase: FormatCase) throws { try checkCongruentBlocks(formatCase.format, base: formatCase.window.start.rawValue) }

    func checkCongruentBlocks<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format)
        try f.map(base, size: 2 * f.block, to: 0x80_0000_0000 + 4 * f.block, maximumLevel: 1)
        #expect(f.shape == ["1@0x\(String(base, radix: 16))", "1@0x\(String(base + f.block, radix: 16))"])
        #expect(f.table.leaves().map(\.output) == [0x80_0000_0000 + 4 * f.block, 0x80_0000_0000 + 5 * f.block].map(HostPhysicalAddress.init))
    }

    @Test("An output not congruent to the guest address modulo the block size forces pages", arguments: FormatCase.allCases)
    func nonCongruentOutputForcesPages(_ formatCase: FormatCase) throws {
        try checkNonCongruent(formatCase.format, base: formatCase.window.start.rawValue)
    }

    func checkNonCongruent<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format)
        try f.map(base, size: 2 * f.block, to: 0x80_0000_0000 + f.page)
        let leaves = f.table.leaves()
        #expect(leaves.count == 2 * Int(f.block / f.page))
        #expect(leaves.allSatisfy { $0.level == 0 })
        #expect(f.translation(base + f.block + 5 * f.page + 3)?.output
                == HostPhysicalAddress(0x80_0000_0000 + f.page + f.block + 5 * f.page + 3))
    }

    @Test("maximumLevel caps the leaf size; nil means the largest the format has")
    func maximumLevelCapsTheLeaves() throws {
        let f = try TableFixture(try ExtendedPageTableFormat(levelCount: 4))
        try f.map(Self.gib1, size: Self.gib1, to: 0x80_0000_0000)
        #expect(f.shape == ["2@0x40000000"])
        try f.map(2 * Self.gib1, size: Self.gib1, to: 0x80_4000_0000, maximumLevel: 1)
        #expect(f.table.leaves(in: GuestPhysicalRange(2 * Self.gib1, size: Self.gib1)).map(\.level) == Array(repeating: 1, count: 512))
        try f.map(3 * Self.gib1, size: 2 * Self.mib2, to: 0x80_8000_0000, maximumLevel: 0)
        #expect(f.table.leaves(in: GuestPhysicalRange(3 * Self.gib1, size: Self.gib1)).map(\.level) == Array(repeating: 0, count: 1024))
        // A maximum at the root, which holds no leaves, means the largest below it.
        try f.map(4 * Self.gib1, size: Self.gib1, to: 0x80_C000_0000, maximumLevel: 3)
        #expect(f.table.leaves(in: GuestPhysicalRange(4 * Self.gib1, size: Self.gib1)).map(\.level) == [2])
    }

    @Test("A ragged range uses the largest leaf that fits at each address")
    func raggedRange() throws {
        let f = try TableFixture(try ExtendedPageTableFormat(levelCount: 4))
        try f.map(Self.gib1 - Self.kib4, size: Self.gib1 + Self.mib2 + 2 * Self.kib4, to: 0x80_0000_0000 - Self.kib4)
        #expect(f.shape == ["0@0x3ffff000", "2@0x40000000", "1@0x80000000", "0@0x80200000"])
    }

    @Test("A walk reports the level at which it found nothing")
    func notPresentLevels() throws {
        let f = try TableFixture(try ExtendedPageTableFormat(levelCount: 4))
        #expect(f.table.translate(GuestPhysicalAddress(Self.gib1)) == .notPresent(level: 3))
        try f.map(Self.gib1, size: Self.kib4, to: 0x80_0000_0000)
        #expect(f.table.translate(GuestPhysicalAddress(Self.gib1 + Self.kib4)) == .notPresent(level: 0))
        #expect(f.table.translate(GuestPhysicalAddress(Self.gib1 + Self.mib2)) == .notPresent(level: 1))
        #expect(f.table.translate(GuestPhysicalAddress(2 * Self.gib1)) == .notPresent(level: 2))
        #expect(f.table.translate(GuestPhysicalAddress(512 * Self.gib1)) == .notPresent(level: 3))
        #expect(f.table.translate(GuestPhysicalAddress(1 << 48)) == .outsideAddressSpace)
        #expect(f.table.outputAddress(of: GuestPhysicalAddress(1 << 48)) == nil)
        #expect(f.table.outputAddress(of: GuestPhysicalAddress(Self.gib1 + Self.kib4)) == nil)
    }

    @Test("translate and outputAddress agree everywhere, and a translation describes its whole leaf",
          arguments: FormatCase.allCases)
    func translateAgreesWithOutputAddress(_ formatCase: FormatCase) throws {
        try checkAgreement(formatCase.format, window: formatCase.window, seed: 0x7A4E)
    }

    func checkAgreement<F: PageTableFormat>(_ format: F, window: GuestPhysicalRange, seed: UInt64) throws {
        let f = try TableFixture(format)
        let base = window.start.rawValue
        try f.map(base, size: f.block, to: 0x80_0000_0000)
        try f.map(base + f.block + 3 * f.page, size: 7 * f.page, to: 0x90_0000_0000 + f.page)
        try f.map(base + 2 * f.block, size: f.block, to: 0xA0_0000_0000, permissions: .read)
        var rng = SplitMix64(seed: seed)
        for _ in 0..<2000 {
            let address = GuestPhysicalAddress(base + rng.below(4 * f.block))
            let result = f.table.translate(address)
            #expect(result.translation?.output == f.table.outputAddress(of: address), "seed \(seed), \(address)")
            if let t = result.translation {
                #expect(t.size == format.entrySize(atLevel: t.level))
                #expect(t.leafAddress.rawValue % t.size == 0 && address.rawValue - t.leafAddress.rawValue < t.size)
                #expect(t.output.rawValue == t.leafOutput.rawValue + (address.rawValue - t.leafAddress.rawValue))
                #expect(t.attributes == format.attributes(ofLeaf: t.entry, atLevel: t.level))
            }
        }
    }

    @Test("leaves(in:) lists every leaf overlapping the range, including a huge leaf that only overlaps")
    func leavesInRange() throws {
        let f = try TableFixture(try ExtendedPageTableFormat(levelCount: 4))
        try f.map(Self.gib1, size: Self.gib1, to: 0x80_0000_0000)
        try f.map(2 * Self.gib1, size: 2 * Self.kib4, to: 0x90_0000_0000)
        let leaves = f.table.leaves(in: GuestPhysicalRange(2 * Self.gib1 - Self.kib4, size: 2 * Self.kib4))
        #expect(leaves.map(\.guestAddress.rawValue) == [Self.gib1, 2 * Self.gib1])
        #expect(leaves.map(\.level) == [2, 0])
        #expect(leaves[1].output == HostPhysicalAddress(0x90_0000_0000))
        #expect(leaves[0].attributes == LeafAttributes(permissions: .readWrite))
    }

    @Test("Unmapping one page of a 1 GiB leaf splits it down to that page; every other page keeps its output")
    func splitKeepsEveryOtherTranslation() throws {
        let f = try TableFixture(try ExtendedPageTableFormat(levelCount: 4))
        try f.map(Self.gib1, size: Self.gib1, to: 0x80_0000_0000, permissions: .all)
        let hole = Self.gib1 + 300 * Self.mib2 + 17 * Self.kib4
        try f.unmap(hole, size: Self.kib4)
        let leaves = f.table.leaves()
        #expect(leaves.count == 511 + 511)
        #expect(leaves.filter { $0.level == 1 }.count == 511)
        var covered: UInt64 = 0
        for leaf in leaves {
            #expect(leaf.output.rawValue == 0x80_0000_0000 + leaf.guestAddress.rawValue - Self.gib1)
            #expect(leaf.attributes == LeafAttributes(permissions: .all))
            covered += leaf.size
        }
        #expect(covered == Self.gib1 - Self.kib4)
        #expect(f.translation(hole) == nil)
    }

    @Test("Mapping a range again in larger leaves merges the tables under it away", arguments: FormatCase.allCases)
    func mergeFreesTables(_ formatCase: FormatCase) throws { try checkMerge(formatCase.format, base: formatCase.window.start.rawValue) }

    func checkMerge<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format, pages: 1024)
        let huge = format.entrySize(atLevel: format.leafLevels.last!)
        try f.map(base, size: huge, to: 0x80_0000_0000, maximumLevel: 0)
        #expect(f.table.leaves().count == Int(huge / f.page))
        try f.map(base, size: huge, to: 0x80_0000_0000)
        #expect(f.table.leaves().map(\.level) == [format.leafLevels.last!])
        // One table per level above the leaf remains (none below it).
        #expect(f.table.reachableTablePages().count == format.rootTableCount + format.rootLevel - format.leafLevels.last!)
        #expect(f.arena.allocatedPageCount == f.table.reachableTablePages().count + f.context.pageCache.count)
    }

    @Test("Revoke wins over grant, and unmapped pages stay unmapped", arguments: FormatCase.allCases)
    func revokeWinsOverGrant(_ formatCase: FormatCase) throws { try checkRevokeWins(formatCase.format, base: formatCase.window.start.rawValue) }

    func checkRevokeWins<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format)
        try f.map(base, size: f.page, to: 0x80_0000_0000, permissions: .read)
        try f.changePermissions(base, size: 3 * f.page, grant: [.write, .execute], revoke: .execute)
        #expect(f.translation(base)?.attributes.permissions == .readWrite)
        #expect(f.translation(base + f.page) == nil)
        #expect(f.table.leaves().count == 1)
    }

    @Test("A permission change over part of a block splits it and keeps its outputs", arguments: FormatCase.allCases)
    func partialPermissionChange(_ formatCase: FormatCase) throws {
        try checkPartialPermissionChange(formatCase.format, base: formatCase.window.start.rawValue)
    }

    func checkPartialPermissionChange<F: PageTableFormat>(_ format: F, base: UInt64) throws {
        let f = try TableFixture(format)
        try f.map(base, size: f.block, to: 0x80_0000_0000)
        try f.changePermissions(base + 2 * f.page, size: 2 * f.page, revoke: .write)
        #expect(f.table.leaves().count == Int(f.block / f.page))
        for index: UInt64 in [0, 1, 2, 3, 4] {
            let t = try #require(f.translation(base + index * f.page))
            #expect(t.output == HostPhysicalAddress(0x80_0000_0000 + index * f.page))
            #expect(t.attributes.permissions == (index == 2 || index == 3 ? .read : .readWrite))
        }
    }
}
