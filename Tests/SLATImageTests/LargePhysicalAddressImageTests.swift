import SLATArm64
import SLATCore
import SLATImage
import Testing

/// `slat build --lpa2 [--start-level N]` images: FEAT_LPA2 descriptors and
/// registers that restore the configuration.
@Suite("FEAT_LPA2 images")
struct LargePhysicalAddressImageTests {
    static let configuration = ImageConfiguration(
        kind: .stageTwo4K, inputAddressBits: 52, outputAddressBits: 52, lpa2: true, startLevel: -1)

    @Test("An image at start level -1 records LPA2=1, START_LEVEL=-1 and a VTCR with DS and SL2")
    func levelMinus1Registers() throws {
        let (image, _) = try buildImage("0xffffffffff000 4K 0xe000000001000 rw wb\n", Self.configuration)
        let registers = try image.registers()
        #expect(registers["LPA2"] == 1)
        #expect(registers["START_LEVEL"] == UInt64.max)
        let vtcr = StageTwoTranslationControl(rawValue: try #require(registers["VTCR"]))
        #expect(vtcr.largePhysicalAddresses && vtcr.startLevelExtension)
        #expect(vtcr.startLevel == -1)
    }

    @Test("The registers of a start level -1 image read back as the same configuration")
    func levelMinus1RoundTrip() throws {
        let (image, _) = try buildImage("0xffffffffff000 4K 0xe000000001000 rw wb\n", Self.configuration)
        let parsed = try RegisterFile(parsing: try image.registers().environmentText)
        #expect(parsed.configuration == Self.configuration)
    }

    @Test("A page above 2^50 translates through the image to its 52-bit output")
    func translatesAbove2To50() throws {
        let (_, walker) = try buildImage("0xffffffffff000 4K 0xe000000001000 rw wb\n", Self.configuration)
        let translator = ImageTranslator(walker: walker)
        guard case .mapped(let output, _) = translator.translate(0xf_ffff_ffff_f123) else {
            Issue.record("not mapped: \(translator.translate(0xf_ffff_ffff_f123))")
            return
        }
        #expect(output == 0xe_0000_0000_1123)
    }

    @Test("--lpa2 is refused for the 64K granule, which has 52-bit addresses without it")
    func lpa2With64KIsRefused() {
        #expect(throws: ImageError.self) {
            try ImageConfiguration(kind: .stageTwo64K, lpa2: true).makeFormat()
        }
    }
}
