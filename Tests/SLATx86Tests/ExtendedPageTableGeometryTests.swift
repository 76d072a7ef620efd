import SLATCore
import SLATx86
import Testing

@Suite("EPT geometry")
struct ExtendedPageTableGeometryTests {
    @Test func fourLevelWalkTranslates48BitsFromOneRootTable() throws {
        let format = try ExtendedPageTableFormat(levelCount: 4)
        #expect(format.granuleShift == 12)
        #expect(format.bitsPerLevel == 9)
        #expect(format.rootLevel == 3)
        #expect(format.levelCount == 4)
        #expect(format.inputAddressBits == 48)
        #expect(format.rootTableCount == 1)
        #expect(format.rootEntryCount == 512)
    }

    @Test func fiveLevelWalkTranslates57BitsFromOneRootTable() throws {
        let format = try ExtendedPageTableFormat(levelCount: 5)
        #expect(format.rootLevel == 4)
        #expect(format.levelCount == 5)
        #expect(format.inputAddressBits == 57)
        #expect(format.rootTableCount == 1)
        #expect(format.rootEntryCount == 512)
    }

    @Test func defaultsAreFourLevels52BitOutputWithoutMBECWithAccessedDirty() throws {
        let format = try ExtendedPageTableFormat()
        #expect(format.levelCount == 4)
        #expect(format.outputAddressBits == 52)
        #expect(!format.modeBasedExecute)
        #expect(format.accessedDirtyEnabled)
        #expect(!format.ignoreGuestPAT)
    }

    @Test func leavesAreAllowedAtHeightsZeroToTwoOnly() throws {
        let format = try ExtendedPageTableFormat(levelCount: 5)
        #expect(format.canHoldLeaf(atLevel: 0))
        #expect(format.canHoldLeaf(atLevel: 1))
        #expect(format.canHoldLeaf(atLevel: 2))
        #expect(!format.canHoldLeaf(atLevel: 3))
        #expect(!format.canHoldLeaf(atLevel: 4))
        #expect(!format.canHoldLeaf(atLevel: -1))
    }

    @Test func leafSizesAre4KiB2MiBAnd1GiB() throws {
        let format = try ExtendedPageTableFormat()
        #expect(format.entrySize(atLevel: 0) == 0x1000)
        #expect(format.entrySize(atLevel: 1) == 0x20_0000)
        #expect(format.entrySize(atLevel: 2) == 0x4000_0000)
        #expect(format.entrySize(atLevel: 3) == 0x80_0000_0000)
    }

    @Test func architecturalLevelIsHeightPlusOne() throws {
        let format = try ExtendedPageTableFormat(levelCount: 5)
        #expect((0...4).map(format.architecturalLevel) == [1, 2, 3, 4, 5])
    }

    @Test func softwareFieldIsElevenBitsAndNoBreakBeforeMakeIsNeeded() throws {
        let format = try ExtendedPageTableFormat()
        #expect(format.softwareBitCount == 11)
        #expect(!format.requiresBreakBeforeMake)
    }

    @Test func outputAddressSizeAcceptsEveryWidthFrom36To52() throws {
        for bits in 36...52 {
            #expect(try ExtendedPageTableFormat(outputAddressBits: bits).outputAddressBits == bits)
        }
    }
}
