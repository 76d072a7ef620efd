import SLATArm64
import SLATCore
import Testing

@Suite("Stage-2 MemAttr encodings with HCR_EL2.FWB set (FEAT_S2FWB)")
struct StageTwoForcedWriteBackEncodingTests {
    static let fwb = try! StageTwoFormat(forcesWriteBack: true)

    @Test("Each type FWB can force encodes as the architecture's FWB value, with MemAttr[3] clear, and decodes back",
          arguments: [(MemoryType.writeBack, UInt64(0b0110)), (.writeCombining, 0b0101), (.device, 0b0001), (.uncached, 0b0000)])
    func forcedWriteBackEncodingsRoundTrip(_ type: MemoryType, _ field: UInt64) throws {
        let attributes = LeafAttributes(permissions: .readWrite, memoryType: type)
        try Self.fwb.validate(attributes)
        let entry = Self.fwb.leafEntry(output: HostPhysicalAddress(0x20_0000), attributes: attributes, atLevel: 1)
        #expect(entry >> 2 & 0xF == field)
        #expect(entry & (1 << 5) == 0)
        #expect(Self.fwb.attributes(ofLeaf: entry, atLevel: 1).memoryType == type)
        #expect(StageTwoDescriptor(rawValue: entry).memoryType(forcedWriteBack: true) == type)
    }

    @Test("Normal write-through has no FWB encoding")
    func writeThroughIsRejectedWithForcedWriteBack() {
        #expect(throws: SLATError.unsupportedMemoryType(.writeThrough)) {
            try Self.fwb.validate(LeafAttributes(permissions: .read, memoryType: .writeThrough))
        }
    }

    @Test("With FWB, 0b0111 (stage 1's attributes) and the FWB-off write-back value 0b1111 decode as reserved")
    func stageOneAttributeValuesDecodeAsReserved() {
        for field: UInt64 in [0b0111, 0b1111] {
            let entry = Self.fwb.leafEntry(output: HostPhysicalAddress(0x1000), attributes: LeafAttributes(permissions: .read), atLevel: 0)
                & ~(0xF << 2) | field << 2
            #expect(Self.fwb.attributes(ofLeaf: entry, atLevel: 0).memoryType == .reserved(UInt8(field)))
        }
    }

    @Test("A format with FWB encodings over hooks that do not force write-back is rejected")
    func forcedWriteBackFormatNeedsForcingHooks() throws {
        #expect(throws: SLATError.writeBackForcingMismatch(format: true, caches: false)) {
            _ = try StageTwoPageTable(format: Self.fwb, memory: try TableArena(pageCount: 8, prefault: false),
                                      tlb: CountingTLB(), caches: CountingCacheMaintenance(), vmid: 1)
        }
    }
}
