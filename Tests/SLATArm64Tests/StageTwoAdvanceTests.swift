import SLATArm64
import SLATCore
import Testing

@Suite("Stage-2 leaf advance")
struct StageTwoAdvanceTests {
    @Test func pageAdvancesBy4KiB() throws {
        #expect(try StageTwoFormat().leafEntry(0x0040_0000_8000_17FF, advancedBy: 0x1000) == 0x0040_0000_8000_27FF)
    }

    @Test func sixtyFourKiB52BitBlockCarriesFromBit47IntoBits15To12() throws {
        let format = try StageTwoFormat(granule: .size64KiB, inputAddressBits: 52, outputAddressBits: 52)
        // block at 0x0000_FFFF_E000_0000 + 512 MiB = 0x0001_0000_0000_0000: in place 0, OA[51:48] = 1 → 0x1000
        #expect(format.leafEntry(0x0000_FFFF_E000_07FD, advancedBy: 0x2000_0000) == 0x0000_0000_0000_17FD)
    }

    @Test func lpa2PageCarriesFromBit49IntoBits9To8() throws {
        let format = try StageTwoFormat(inputAddressBits: 52, outputAddressBits: 52, lpa2: true)
        // page 0x0003_FFFF_FFFF_F000 + 4 KiB = 0x0004_0000_0000_0000: in place 0, OA[51:50] = 1 → 0x100
        #expect(format.leafEntry(0x0003_FFFF_FFFF_F4C7, advancedBy: 0x1000) == 0x0000_0000_0000_05C7)
    }

    @Test(arguments: TestConfigurations.everyLeafLayout)
    func advancedLeafEqualsTheLeafEncodedAtTheNextAddress(configuration: (TranslationGranule, Int, Int, Bool)) throws {
        let format = try TestConfigurations.format(configuration, executeNeverSplit: true)
        let attributes = LeafAttributes(permissions: [.read, .executeUser], memoryType: .writeThrough, softwareBits: 0xA)
        for level in TestConfigurations.leafLevels(format) {
            let size = format.entrySize(atLevel: level)
            // start four leaves below the top of the in-place field (2^48, or
            // 2^50 with FEAT_LPA2) so that 52-bit layouts cross into the high bits
            let crossing = UInt64(1) << (format.lpa2 ? 50 : 48)
            let first = min(crossing, UInt64(1) << UInt64(format.outputAddressBits) - 8 * size) - 4 * size
            var entry = format.leafEntry(output: HostPhysicalAddress(first), attributes: attributes, atLevel: level)
            for step in 1...8 {
                entry = format.leafEntry(entry, advancedBy: size)
                let output = HostPhysicalAddress(first + size * UInt64(step))
                #expect(entry == format.leafEntry(output: output, attributes: attributes, atLevel: level))
            }
        }
    }
}
