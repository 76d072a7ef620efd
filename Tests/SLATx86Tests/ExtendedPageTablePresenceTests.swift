import SLATCore
import SLATx86
import Testing

@Suite("EPT present, table and frozen entries")
struct ExtendedPageTablePresenceTests {
    static let allLevels = [0, 1, 2, 3, 4]

    @Test(arguments: allLevels)
    func zeroEntryIsNotPresent(level: Int) throws {
        #expect(!(try ExtendedPageTableFormat(levelCount: 5)).isPresent(0, atLevel: level))
    }

    @Test(arguments: allLevels)
    func frozenEntryIsNotPresentWithOrWithoutMBEC(level: Int) throws {
        for mbec in [false, true] {
            let format = try ExtendedPageTableFormat(levelCount: 5, modeBasedExecute: mbec)
            #expect(format.frozenEntry == 0x1A0)
            #expect(!format.isPresent(format.frozenEntry, atLevel: level))
        }
    }

    @Test func frozenEntryHasNoAccessBitNoMMUPresentBitAndNoAddress() throws {
        let format = try ExtendedPageTableFormat()
        #expect(format.frozenEntry & 0xC07 == 0)
        #expect(format.frozenEntry & 0x800 == 0)
        #expect(format.frozenEntry & ExtendedPageTableBits.address == 0)
    }

    @Test(arguments: allLevels)
    func mmuPresentBitAloneMakesAnEntryPresent(level: Int) throws {
        #expect(try ExtendedPageTableFormat(levelCount: 5).isPresent(0x800, atLevel: level))
    }

    @Test(arguments: [UInt64(0x1), 0x2, 0x4, 0x7])
    func anyAccessBitMakesAnEntryPresentWithoutTheMMUPresentBit(entry: UInt64) throws {
        #expect(try ExtendedPageTableFormat().isPresent(entry, atLevel: 0))
    }

    @Test func userExecuteBitAloneIsPresentOnlyWithMBEC() throws {
        #expect(try ExtendedPageTableFormat(modeBasedExecute: true).isPresent(0x400, atLevel: 0))
        #expect(!(try ExtendedPageTableFormat(modeBasedExecute: false)).isPresent(0x400, atLevel: 0))
    }

    @Test(arguments: [1, 2, 3, 4])
    func tableEntryIsATableAboveHeightZero(level: Int) throws {
        let format = try ExtendedPageTableFormat(levelCount: 5)
        let entry = format.tableEntry(child: HostPhysicalAddress(0x1000))
        #expect(format.isPresent(entry, atLevel: level))
        #expect(format.isTable(entry, atLevel: level))
        #expect(!format.isLeaf(entry, atLevel: level))
    }

    @Test func nothingIsATableAtHeightZero() throws {
        let format = try ExtendedPageTableFormat()
        #expect(!format.isTable(0x0000_0000_0000_1807, atLevel: 0))
        #expect(format.isLeaf(0x0000_0000_0000_1807, atLevel: 0))
    }

    @Test(arguments: [1, 2])
    func largeLeafIsNotATable(level: Int) throws {
        let format = try ExtendedPageTableFormat()
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0), attributes: LeafAttributes(permissions: .all), atLevel: level)
        #expect(!format.isTable(entry, atLevel: level))
        #expect(format.isLeaf(entry, atLevel: level))
    }
}
