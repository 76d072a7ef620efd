import SLATArm64
import SLATCore
import Testing

@Suite("Stage-2 configuration errors")
struct StageTwoConfigurationErrorTests {
    @Test(arguments: [TranslationGranule.size4KiB, .size16KiB], [0, 31, 49, 52, 64])
    func ipaOutside32To48IsUnsupportedFor4And16KiB(granule: TranslationGranule, bits: Int) {
        #expect(throws: SLATError.unsupportedInputAddressSize(bits: bits)) {
            try StageTwoFormat(granule: granule, inputAddressBits: bits, outputAddressBits: 48)
        }
    }

    @Test(arguments: [0, 31, 53, 64])
    func ipaOutside32To52IsUnsupportedFor64KiB(bits: Int) {
        #expect(throws: SLATError.unsupportedInputAddressSize(bits: bits)) {
            try StageTwoFormat(granule: .size64KiB, inputAddressBits: bits, outputAddressBits: 52)
        }
    }

    @Test func ipaLargerThanThePAIsUnsupported() {
        #expect(throws: SLATError.unsupportedInputAddressSize(bits: 40)) {
            try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40, outputAddressBits: 36)
        }
        #expect(throws: SLATError.unsupportedInputAddressSize(bits: 49)) {
            try StageTwoFormat(granule: .size64KiB, inputAddressBits: 49, outputAddressBits: 48)
        }
    }

    @Test(arguments: [0, 31, 33, 38, 46, 50, 56, 64])
    func paSizesWithoutAPSEncodingAreUnsupported(bits: Int) {
        #expect(throws: SLATError.unsupportedOutputAddressSize(bits: bits)) {
            try StageTwoFormat(granule: .size4KiB, inputAddressBits: 32, outputAddressBits: bits)
        }
    }

    @Test(arguments: [TranslationGranule.size4KiB, .size16KiB])
    func fiftyTwoBitPAIsUnsupportedWithoutThe64KiBGranule(granule: TranslationGranule) {
        #expect(throws: SLATError.unsupportedOutputAddressSize(bits: 52)) {
            try StageTwoFormat(granule: granule, inputAddressBits: 40, outputAddressBits: 52)
        }
    }

    @Test(arguments: [32, 36, 40, 42, 44, 48])
    func everyPSEncodedPASizeIsAcceptedWithEveryGranule(bits: Int) throws {
        for granule in [TranslationGranule.size4KiB, .size16KiB, .size64KiB] {
            #expect(try StageTwoFormat(granule: granule, inputAddressBits: 32, outputAddressBits: bits)
                .outputAddressBits == bits)
        }
    }

    @Test func fiftyTwoBitIPAAndPAAreAcceptedWithThe64KiBGranule() throws {
        let format = try StageTwoFormat(granule: .size64KiB, inputAddressBits: 52, outputAddressBits: 52)
        #expect(format.inputAddressBits == 52 && format.outputAddressBits == 52)
    }
}
