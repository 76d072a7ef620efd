import SLATArm64
import SLATCore
import Testing

@Suite("Stage-2 present, table and frozen descriptors")
struct StageTwoPresenceTests {
    @Test(arguments: [0, 1, 2, 3])
    func zeroAndFrozenDescriptorsAreNotPresent(level: Int) throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 48)
        #expect(!format.isPresent(0, atLevel: level))
        #expect(!format.isPresent(format.frozenEntry, atLevel: level))
    }

    @Test(arguments: [0, 1, 2, 3])
    func descriptorWithBit0ClearIsNotPresentWhateverElseIsSet(level: Int) throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 48)
        #expect(!format.isPresent(0xFFFF_FFFF_FFFF_FFFE, atLevel: level))
    }

    @Test func level3DescriptorNeedsBit1() throws {
        let format = try StageTwoFormat()
        #expect(format.isPresent(0x3, atLevel: 0))
        #expect(!format.isPresent(0x1, atLevel: 0))
    }

    @Test func blockDescriptorIsPresentAtBlockLevels() throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 48)
        #expect(format.isPresent(0x1, atLevel: 1))
        #expect(format.isPresent(0x1, atLevel: 2))
    }

    @Test func blockDescriptorIsNotPresentWhereTheGranuleHasNoBlocks() throws {
        // without FEAT_LPA2, 4 KiB level 0 and 16 KiB level 1 have no blocks;
        // without a 52-bit PA, neither has 64 KiB level 1
        #expect(!(try StageTwoFormat(granule: .size4KiB, inputAddressBits: 48)).isPresent(0x1, atLevel: 3))
        #expect(!(try StageTwoFormat(granule: .size16KiB, inputAddressBits: 48)).isPresent(0x1, atLevel: 2))
        #expect(!(try StageTwoFormat(granule: .size64KiB, inputAddressBits: 48, outputAddressBits: 48))
            .isPresent(0x1, atLevel: 2))
    }

    @Test func blockDescriptorIsPresentAtTheLevelsLargeAddressesAdd() throws {
        #expect(try StageTwoFormat(granule: .size4KiB, inputAddressBits: 48, outputAddressBits: 52, lpa2: true)
            .isPresent(0x1, atLevel: 3))
        #expect(try StageTwoFormat(granule: .size16KiB, inputAddressBits: 48, outputAddressBits: 52, lpa2: true)
            .isPresent(0x1, atLevel: 2))
        #expect(try StageTwoFormat(granule: .size64KiB, inputAddressBits: 52, outputAddressBits: 52)
            .isPresent(0x1, atLevel: 2))
    }

    @Test(arguments: [1, 2, 3])
    func tableDescriptorIsATableAboveLevel3(level: Int) throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 48)
        let entry = format.tableEntry(child: HostPhysicalAddress(0x1000))
        #expect(format.isPresent(entry, atLevel: level))
        #expect(format.isTable(entry, atLevel: level))
        #expect(!format.isLeaf(entry, atLevel: level))
    }

    @Test func pageDescriptorIsALeafNotATable() throws {
        let format = try StageTwoFormat()
        #expect(!format.isTable(0x3, atLevel: 0))
        #expect(format.isLeaf(0x3, atLevel: 0))
    }

    @Test(arguments: [1, 2])
    func blockIsALeafNotATable(level: Int) throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 48)
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0), attributes: LeafAttributes(permissions: .all), atLevel: level)
        #expect(!format.isTable(entry, atLevel: level))
        #expect(format.isLeaf(entry, atLevel: level))
    }
}
