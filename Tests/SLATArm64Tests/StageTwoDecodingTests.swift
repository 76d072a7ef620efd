import SLATArm64
import SLATCore
import Testing

/// Raw descriptors written by hand, decoded.
@Suite("Stage-2 leaf decoding")
struct StageTwoDecodingTests {
    @Test func readWriteWriteBackPage() throws {
        let format = try StageTwoFormat()
        let entry: UInt64 = 0x0040_0000_8000_17FF
        #expect(format.attributes(ofLeaf: entry, atLevel: 0)
            == LeafAttributes(permissions: .readWrite, memoryType: .writeBack, accessed: true, dirty: false))
        #expect(format.outputAddress(ofLeaf: entry, atLevel: 0) == HostPhysicalAddress(0x8000_1000))
    }

    @Test func dirtyBitModifierAndContiguousDoNotChangeTheAttributes() throws {
        let format = try StageTwoFormat()
        // bit 51 (DBM) 0x0008… and bit 52 (contiguous) 0x0010… added to the page above
        #expect(format.attributes(ofLeaf: 0x0058_0000_8000_17FF, atLevel: 0)
            == LeafAttributes(permissions: .readWrite, memoryType: .writeBack, accessed: true, dirty: false))
        #expect(format.outputAddress(ofLeaf: 0x0058_0000_8000_17FF, atLevel: 0) == HostPhysicalAddress(0x8000_1000))
    }

    @Test func blockAddressIgnoresBitsBelowTheBlockSize() throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 48)
        #expect(format.outputAddress(ofLeaf: 0x0000_0000_4030_1745, atLevel: 1) == HostPhysicalAddress(0x4020_0000))
        #expect(format.outputAddress(ofLeaf: 0x0000_0000_7FFF_F745, atLevel: 2) == HostPhysicalAddress(0x4000_0000))
    }

    @Test(arguments: [(UInt64(0x3F), MemoryType.writeBack), (0x2B, .writeThrough), (0x17, .writeCombining),
                      (0x03, .uncached), (0x07, .device)])
    func namedMemAttrValuesDecode(entry: UInt64, type: MemoryType) throws {
        // MemAttr << 2 | valid | page: 0xF → 0x3F, 0xA → 0x2B, 0x5 → 0x17, 0x0 → 0x03, 0x1 → 0x07
        #expect(try StageTwoFormat().attributes(ofLeaf: entry, atLevel: 0).memoryType == type)
    }

    @Test(arguments: [UInt8(0x2), 0x3, 0x4, 0x6, 0x8, 0x9, 0xB, 0xC, 0xD, 0xE])
    func otherMemAttrValuesDecodeAsReserved(field: UInt8) throws {
        let entry = UInt64(field) << 2 | 0x3
        #expect(try StageTwoFormat().attributes(ofLeaf: entry, atLevel: 0).memoryType == .reserved(field))
    }

    @Test func bit53AloneMeansNothingWithoutXNX() throws {
        // XN[1:0] = 0b01: RES0 bit 53 without FEAT_XNX, "not executable at EL1" with it
        #expect(try StageTwoFormat().permissions(ofLeaf: 0x0020_0000_0000_07FF) == .all)
        #expect(try StageTwoFormat(executeNeverSplit: true).permissions(ofLeaf: 0x0020_0000_0000_07FF)
            == [.read, .write, .executeUser])
    }

    @Test func everyXNXFieldValueDecodes() throws {
        let format = try StageTwoFormat(executeNeverSplit: true)
        #expect(format.permissions(ofLeaf: 0x0000_0000_0000_0003) == .execute)
        #expect(format.permissions(ofLeaf: 0x0020_0000_0000_0003) == .executeUser)
        #expect(format.permissions(ofLeaf: 0x0040_0000_0000_0003) == [])
        #expect(format.permissions(ofLeaf: 0x0060_0000_0000_0003) == .executePrivileged)
    }

    @Test func softwareBitsDecodeFromBits55To58() throws {
        // bits 55 and 58 → software bits 0 and 3 = 0b1001
        #expect(try StageTwoFormat().attributes(ofLeaf: 0x0480_0000_0000_0003, atLevel: 0).softwareBits == 0b1001)
    }
}
