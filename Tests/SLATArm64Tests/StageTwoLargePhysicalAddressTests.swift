import SLATArm64
import SLATCore
import Testing

/// FEAT_LPA2 (`VTCR_EL2.DS` = 1) with the 4 and 16 KiB granules, and chosen
/// start levels (Arm ARM `AArch64.S2InconsistentSL`, `AArch64.S2InvalidSL`).
@Suite("Stage-2 FEAT_LPA2 and start levels")
struct StageTwoLargePhysicalAddressTests {
    static func lpa2(_ granule: TranslationGranule = .size4KiB, ipa: Int = 52, startLevel: Int? = nil) throws -> StageTwoFormat {
        try StageTwoFormat(granule: granule, inputAddressBits: ipa, outputAddressBits: 52, lpa2: true, startLevel: startLevel)
    }

    @Test func fourKiB52BitIPAStartsAtLevel0WithSixteenConcatenatedTables() throws {
        let format = try Self.lpa2()
        #expect(format.startLevel == 0)
        #expect(format.levelCount == 4)
        #expect(format.rootTableCount == 16)
    }

    @Test func fourKiB52BitIPACanStartAtLevelMinus1WithOneTableOf16Entries() throws {
        let format = try Self.lpa2(startLevel: -1)
        #expect(format.startLevel == -1)
        #expect(format.rootLevel == 4)
        #expect(format.architecturalLevel(format.rootLevel) == -1)
        #expect(format.levelCount == 5)
        #expect(format.rootTableCount == 1)
        #expect(format.rootEntryCount == 16)
    }

    @Test func sixteenKiB52BitIPAStartsAtLevel0() throws {
        let format = try Self.lpa2(.size16KiB)
        #expect(format.startLevel == 0)
        #expect(format.rootTableCount == 1)
        #expect(format.rootEntryCount == 32)
    }

    @Test func levelMinus1NeedsLPA2() {
        #expect(throws: SLATError.unsupportedStartLevel(-1, inputBits: 48)) {
            try StageTwoFormat(inputAddressBits: 48, outputAddressBits: 48, startLevel: -1)
        }
    }

    @Test func levelMinus1NeedsThe4KiBGranule() {
        #expect(throws: SLATError.unsupportedStartLevel(-1, inputBits: 52)) { try Self.lpa2(.size16KiB, startLevel: -1) }
    }

    @Test func sixteenKiBLevel0NeedsLPA2() {
        #expect(throws: SLATError.unsupportedStartLevel(0, inputBits: 48)) {
            try StageTwoFormat(granule: .size16KiB, inputAddressBits: 48, outputAddressBits: 48, startLevel: 0)
        }
    }

    @Test func sixtyFourKiBNeverStartsAtLevel0() {
        #expect(throws: SLATError.unsupportedStartLevel(0, inputBits: 52)) {
            try StageTwoFormat(granule: .size64KiB, inputAddressBits: 52, outputAddressBits: 52, startLevel: 0)
        }
    }

    @Test func aStartLevelThatWouldNeedMoreThan16TablesIsRefused() {
        // level 2 resolves 21 bits below it; a 40-bit IPA leaves 19 for the start level, at most 9 + 4
        #expect(throws: SLATError.unsupportedStartLevel(2, inputBits: 40)) {
            try StageTwoFormat(inputAddressBits: 40, startLevel: 2)
        }
    }

    @Test func aStartLevelWithNothingLeftToResolveIsRefused() {
        // level 0 resolves 39 bits below it: a 36-bit IPA leaves it nothing
        #expect(throws: SLATError.unsupportedStartLevel(0, inputBits: 36)) {
            try StageTwoFormat(inputAddressBits: 36, outputAddressBits: 48, startLevel: 0)
        }
    }

    @Test func fourKiBLevel0NeedsA44BitPA() {
        #expect(throws: SLATError.unsupportedStartLevel(0, inputBits: 40)) {
            try StageTwoFormat(inputAddressBits: 40, outputAddressBits: 42, startLevel: 0)
        }
    }

    @Test func fourKiBLevel3NeedsTTSTWhichIsNotSupported() {
        #expect(throws: SLATError.unsupportedStartLevel(3, inputBits: 32)) {
            try StageTwoFormat(inputAddressBits: 32, startLevel: 3)
        }
    }

    @Test func aChosenStartLevelEqualToTheDefaultGivesTheSameFormat() throws {
        #expect(try StageTwoFormat(inputAddressBits: 40, startLevel: 1) == StageTwoFormat(inputAddressBits: 40))
    }

    @Test func fourKiB40BitIPACanStartAtLevel0WithTwoRootEntries() throws {
        let format = try StageTwoFormat(inputAddressBits: 40, outputAddressBits: 48, startLevel: 0)
        #expect(format.levelCount == 4)
        #expect(format.rootTableCount == 1)
        #expect(format.rootEntryCount == 2)
    }

    @Test func fiftyTwoBitPAWith4KiBNeedsLPA2() {
        #expect(throws: SLATError.unsupportedOutputAddressSize(bits: 52)) {
            try StageTwoFormat(inputAddressBits: 48, outputAddressBits: 52)
        }
    }

    @Test func fiftyTwoBitIPAWith16KiBNeedsLPA2() {
        #expect(throws: SLATError.unsupportedInputAddressSize(bits: 52)) {
            try StageTwoFormat(granule: .size16KiB, inputAddressBits: 52, outputAddressBits: 48)
        }
    }

    @Test func lpa2WithThe64KiBGranuleIsRefused() {
        #expect(throws: SLATError.unsupportedGranule(65536)) {
            try StageTwoFormat(granule: .size64KiB, inputAddressBits: 48, outputAddressBits: 48, lpa2: true)
        }
    }

    @Test func lpa2LeafHoldsOA51To50InBits9To8AndNoShareability() throws {
        let format = try Self.lpa2()
        let high = format.leafEntry(output: HostPhysicalAddress(0x000C_0000_0000_1000),
                                    attributes: LeafAttributes(permissions: .readWrite), atLevel: 0)
        #expect(high & 0x300 == 0x300)
        #expect(high & 0x000F_0000_0000_0000 == 0)
        #expect(format.outputAddress(ofLeaf: high, atLevel: 0) == HostPhysicalAddress(0x000C_0000_0000_1000))
        let low = format.leafEntry(output: HostPhysicalAddress(0x0002_0000_0000_1000),
                                   attributes: LeafAttributes(permissions: .readWrite), atLevel: 0)
        #expect(low & 0x300 == 0)
        #expect(low & 0x0002_0000_0000_0000 != 0)
    }

    @Test func withoutLPA2LeavesAreInnerShareable() throws {
        let entry = try StageTwoFormat().leafEntry(output: HostPhysicalAddress(0x1000),
                                                   attributes: LeafAttributes(permissions: .read), atLevel: 0)
        #expect(entry & 0x300 == 0x300)
    }

    @Test func lpa2TableDescriptorHoldsTheChildsHighBitsInBits9To8() throws {
        let format = try Self.lpa2(.size16KiB)
        let child = HostPhysicalAddress(0x0008_0000_0001_4000)
        let entry = format.tableEntry(child: child)
        #expect(entry & 0x300 == 0x200)
        #expect(format.childTable(of: entry) == child)
    }

    @Test func lpa2Bit49IsAnAddressBitAndBit50IsReserved() throws {
        let format = try Self.lpa2()
        let leaf = format.leafEntry(output: HostPhysicalAddress(0x0002_0000_0000_0000),
                                    attributes: LeafAttributes(permissions: .read), atLevel: 0)
        #expect(format.reservedBits(inEntry: leaf, atLevel: 0) == 0)
        #expect(format.reservedBits(inEntry: leaf | 1 << 50, atLevel: 0) == 1 << 50)
        #expect(try StageTwoFormat().reservedBits(inEntry: leaf, atLevel: 0) == 1 << 49)
    }

    @Test func translationControlSetsDSAndSL2ForLevelMinus1() throws {
        let control = StageTwoTranslationControl(format: try Self.lpa2(startLevel: -1))
        #expect(control.rawValue >> 32 & 0b11 == 0b11)
        #expect(control.sl0 == 0)
        #expect(control.startLevel == -1)
        #expect(control.outputAddressBits == 52)
        #expect(control.inputAddressBits == 52)
    }

    @Test func translationControlSetsDSWithoutSL2ForLevel0() throws {
        let control = StageTwoTranslationControl(format: try Self.lpa2())
        #expect(control.largePhysicalAddresses)
        #expect(!control.startLevelExtension)
        #expect(control.sl0 == 2)
        #expect(control.startLevel == 0)
    }

    @Test func sixteenKiBLevel0IsSL0Equal3() throws {
        let control = StageTwoTranslationControl(format: try Self.lpa2(.size16KiB))
        #expect(control.sl0 == 3)
        #expect(control.startLevel == 0)
    }

    @Test func withoutLPA2NeitherDSNorSL2IsSet() throws {
        #expect(StageTwoTranslationControl(format: try StageTwoFormat()).rawValue >> 32 == 0)
    }

    @Test func translationTableBaseCarriesRootBits51To48InBits5To2() throws {
        let format = try Self.lpa2(startLevel: -1)
        let root = HostPhysicalAddress(0x000F_0000_0000_1000)
        let base = try StageTwoTranslationTableBase(format: format, root: root, vmid: 3)
        #expect(base.rawValue & 0b11_1100 == 0b11_1100)
        #expect(base.rootAddress(in: format) == root)
    }

    @Test func lpa2MapsAndTranslatesAPageAbove2To50FromStartLevelMinus1() throws {
        let format = try Self.lpa2(startLevel: -1)
        let arena = try TableArena(pageSize: 4096, pageCount: 16, prefault: false)
        let mmu = try StageTwoPageTable(format: format, memory: arena, tlb: CountingTLB(),
                                        caches: CountingCacheMaintenance(), vmid: 1, readerSlots: 1)
        let guest = GuestPhysicalAddress(0x000F_FFFF_FFFF_F000)
        let output = HostPhysicalAddress(0x000D_0000_0000_3000)
        try mmu.map(GuestPhysicalRange(start: guest, size: 0x1000), to: output,
                    attributes: LeafAttributes(permissions: .readWrite), context: PageTableContext(readerSlot: 0))
        let translation = try #require(mmu.table.translate(guest).translation)
        #expect(translation.output == output)
        #expect(translation.level == 0)
    }
}
