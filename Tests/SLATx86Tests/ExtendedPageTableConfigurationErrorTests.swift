import SLATCore
import SLATx86
import Testing

@Suite("EPT configuration errors")
struct ExtendedPageTableConfigurationErrorTests {
    @Test(arguments: [0, 2, 3, 6])
    func levelCountOtherThanFourOrFiveIsUnsupported(levels: Int) {
        #expect(throws: SLATError.unsupportedLevelCount(levels)) {
            try ExtendedPageTableFormat(levelCount: levels)
        }
    }

    @Test(arguments: [0, 32, 35, 53, 64])
    func outputAddressSizeOutside36To52IsUnsupported(bits: Int) {
        #expect(throws: SLATError.unsupportedOutputAddressSize(bits: bits)) {
            try ExtendedPageTableFormat(outputAddressBits: bits)
        }
    }
}
