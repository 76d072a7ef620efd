import SLATArm64
import SLATCore
import SLATImage
import Testing

@Suite("slat build --fwb: stage-2 images for HCR_EL2.FWB = 1")
struct ForcedWriteBackImageTests {
    static let script = """
    0x80000000 2M 0x60000000 rwx wb
    0x80200000 4K 0x60200000 rw device
    0x80201000 4K 0x60201000 rw nc
    """

    /// MemAttr (bits 5:2) of the leaf descriptors, in the order the script maps them.
    func memoryAttributes(forcedWriteBack: Bool) throws -> [UInt64] {
        let configuration = ImageConfiguration(kind: .stageTwo4K, forcedWriteBack: forcedWriteBack)
        let (image, _) = try buildImage(Self.script, configuration)
        return image.leafEntries.map { $0 >> 2 & 0xF }
    }

    @Test("With --fwb a normal write-back leaf carries 0b0110; device and Normal-NC keep 0b0001 and 0b0101")
    func forcedWriteBackEncodings() throws {
        #expect(try memoryAttributes(forcedWriteBack: true) == [0b0110, 0b0001, 0b0101])
    }

    @Test("Without --fwb a normal write-back leaf carries 0b1111")
    func plainEncodings() throws {
        #expect(try memoryAttributes(forcedWriteBack: false) == [0b1111, 0b0001, 0b0101])
    }

    @Test("An FWB image decodes and translates its write-back leaves as write-back")
    func forcedWriteBackImageDecodesAsWriteBack() throws {
        let (_, walker) = try buildImage(Self.script, ImageConfiguration(kind: .stageTwo4K, forcedWriteBack: true))
        let contents = walker.contents()
        #expect(contents.findings.isEmpty)
        #expect(contents.leaves.map(\.attributes.memoryType) == [.writeBack, .device, .writeCombining])
    }

    @Test("The registers of an FWB image say FWB=0x1 and read back as an FWB configuration; others have no FWB key")
    func registersRecordForcedWriteBack() throws {
        let configuration = ImageConfiguration(kind: .stageTwo4K, forcedWriteBack: true)
        let (image, _) = try buildImage(Self.script, configuration)
        let registers = try RegisterFile(configuration: configuration, root: image.root)
        #expect(registers["FWB"] == 1)
        #expect(registers.configuration.forcedWriteBack)
        let plain = try RegisterFile(configuration: ImageConfiguration(kind: .stageTwo4K), root: image.root)
        #expect(plain["FWB"] == nil)
    }

    @Test("--fwb on an EPT format is refused")
    func forcedWriteBackOnEPTIsRefused() {
        #expect(throws: ImageError.self) { try ImageConfiguration(kind: .ept4, forcedWriteBack: true).makeFormat() }
    }

    @Test("A write-through mapping in an FWB image is refused: FWB has no write-through encoding")
    func writeThroughIsRefusedWithForcedWriteBack() throws {
        #expect(throws: (any Error).self) {
            try buildImage("0x80000000 4K 0x60000000 rw wt", ImageConfiguration(kind: .stageTwo4K, forcedWriteBack: true))
        }
    }
}
