import SLATCore
import SLATx86
import Testing

@Suite("EPT leaf advance")
struct ExtendedPageTableAdvanceTests {
    @Test func pageAdvancesBy4KiB() throws {
        let format = try ExtendedPageTableFormat()
        #expect(format.leafEntry(0x8000_0000_1234_5937, advancedBy: 0x1000) == 0x8000_0000_1234_6937)
    }

    @Test func largePageAdvancesBy2MiB() throws {
        let format = try ExtendedPageTableFormat()
        #expect(format.leafEntry(0x0000_0000_4020_0A81, advancedBy: 0x20_0000) == 0x0000_0000_4040_0A81)
    }

    @Test func hugePageAdvancesBy1GiBKeepingSoftwareBits() throws {
        let format = try ExtendedPageTableFormat()
        #expect(format.leafEntry(0x7FF0_0000_4000_0BA3, advancedBy: 0x4000_0000) == 0x7FF0_0000_8000_0BA3)
    }

    @Test(arguments: [0, 1, 2])
    func advancedLeafEqualsTheLeafEncodedAtTheNextAddress(level: Int) throws {
        let format = try ExtendedPageTableFormat()
        let size = format.entrySize(atLevel: level)
        let attributes = LeafAttributes(permissions: .readWrite, memoryType: .writeThrough, dirty: true, softwareBits: 0x5A5)
        var entry = format.leafEntry(output: HostPhysicalAddress(0), attributes: attributes, atLevel: level)
        for step in 1...8 {
            entry = format.leafEntry(entry, advancedBy: size)
            let output = HostPhysicalAddress(size * UInt64(step))
            #expect(entry == format.leafEntry(output: output, attributes: attributes, atLevel: level))
        }
    }
}
