import SLATArm64
import SLATCore
import Testing

@Suite("Stage-2 levels and leaf sizes")
struct StageTwoLeafLevelTests {
    @Test func fourKiBHasPagesAnd2MiBAnd1GiBBlocksButNoLevel0Blocks() throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 48, outputAddressBits: 48)
        #expect((0...3).map(format.canHoldLeaf) == [true, true, true, false])
        #expect(format.entrySize(atLevel: 0) == 4096)
        #expect(format.entrySize(atLevel: 1) == 2 << 20)
        #expect(format.entrySize(atLevel: 2) == 1 << 30)
    }

    @Test func fourKiBWalkStartingAtLevel2HasNo1GiBLeaves() throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 32, outputAddressBits: 48)
        #expect((0...2).map(format.canHoldLeaf) == [true, true, false])
    }

    @Test func sixteenKiBHasPagesAnd32MiBBlocksOnly() throws {
        let format = try StageTwoFormat(granule: .size16KiB, inputAddressBits: 48, outputAddressBits: 48)
        #expect((0...2).map(format.canHoldLeaf) == [true, true, false])
        #expect(format.entrySize(atLevel: 0) == 16384)
        #expect(format.entrySize(atLevel: 1) == 32 << 20)
    }

    @Test func sixtyFourKiBWith48BitPAHasPagesAnd512MiBBlocksButNot4TiBBlocks() throws {
        let format = try StageTwoFormat(granule: .size64KiB, inputAddressBits: 48, outputAddressBits: 48)
        #expect((0...2).map(format.canHoldLeaf) == [true, true, false])
        #expect(format.entrySize(atLevel: 0) == 65536)
        #expect(format.entrySize(atLevel: 1) == 512 << 20)
    }

    @Test func sixtyFourKiBWith52BitPAHasLevel1BlocksOf4TiB() throws {
        let format = try StageTwoFormat(granule: .size64KiB, inputAddressBits: 52, outputAddressBits: 52)
        #expect((0...2).map(format.canHoldLeaf) == [true, true, true])
        #expect(format.entrySize(atLevel: 2) == 4 << 40)
        #expect(format.architecturalLevel(2) == 1)
    }

    @Test func fourKiBWithLPA2HasLevel0BlocksOf512GiB() throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 52, outputAddressBits: 52, lpa2: true)
        #expect((0...3).map(format.canHoldLeaf) == [true, true, true, true])
        #expect(format.entrySize(atLevel: 3) == 512 << 30)
    }

    @Test func sixteenKiBWithLPA2HasLevel1BlocksOf64GiB() throws {
        let format = try StageTwoFormat(granule: .size16KiB, inputAddressBits: 48, outputAddressBits: 52, lpa2: true)
        #expect((0...2).map(format.canHoldLeaf) == [true, true, true])
        #expect(format.entrySize(atLevel: 2) == 64 << 30)
    }

    @Test func heightsOutsideTheWalkHoldNoLeaves() throws {
        let format = try StageTwoFormat()
        #expect(!format.canHoldLeaf(atLevel: -1))
        #expect(!format.canHoldLeaf(atLevel: 4))
        #expect(!format.canHoldLeaf(atLevel: 100))
    }

    @Test func architecturalLevelIsThreeMinusHeight() throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 48)
        #expect((0...3).map(format.architecturalLevel) == [3, 2, 1, 0])
    }

    @Test func tableGeometryFollowsTheGranule() throws {
        for (granule, shift, bits) in [(TranslationGranule.size4KiB, 12, 9), (.size16KiB, 14, 11), (.size64KiB, 16, 13)] {
            let format = try StageTwoFormat(granule: granule)
            #expect(format.granuleShift == shift)
            #expect(format.bitsPerLevel == bits)
            #expect(format.tablePageSize == granule.byteCount)
        }
    }

    @Test func stageTwoNeedsBreakBeforeMakeAndHasFourSoftwareBits() throws {
        let format = try StageTwoFormat()
        #expect(format.requiresBreakBeforeMake)
        #expect(format.softwareBitCount == 4)
    }

    @Test func defaultsAre4KiBGranule40BitIPA48BitPAWithoutHAOrXNX() throws {
        let format = try StageTwoFormat()
        #expect(format.granule == .size4KiB)
        #expect(format.inputAddressBits == 40)
        #expect(format.outputAddressBits == 48)
        #expect(!format.hardwareAccessFlag)
        #expect(!format.executeNeverSplit)
    }
}
