import SLATCore
import SLATx86
import Testing

/// Raw entries written by hand, decoded.
@Suite("EPT leaf decoding")
struct ExtendedPageTableDecodingTests {
    @Test func suppressVEReadWriteExecuteWriteBackPage() throws {
        let format = try ExtendedPageTableFormat()
        // bit 63 (suppress #VE) | address 0x1234_5000 | 0x937 (RWX, WB, A, MMU present)
        let entry: UInt64 = 0x8000_0000_1234_5937
        #expect(format.attributes(ofLeaf: entry, atLevel: 0)
            == LeafAttributes(permissions: .all, memoryType: .writeBack, accessed: true, dirty: false, softwareBits: 0))
        #expect(format.outputAddress(ofLeaf: entry, atLevel: 0) == HostPhysicalAddress(0x1234_5000))
    }

    @Test func readOnlyUncachedDirtyLargePage() throws {
        let format = try ExtendedPageTableFormat()
        let entry: UInt64 = 0x0000_0000_4020_0A81
        #expect(format.attributes(ofLeaf: entry, atLevel: 1)
            == LeafAttributes(permissions: .read, memoryType: .uncached, accessed: false, dirty: true))
        #expect(format.outputAddress(ofLeaf: entry, atLevel: 1) == HostPhysicalAddress(0x4020_0000))
    }

    @Test func largePageAddressIgnoresBitsBelowItsSize() throws {
        let format = try ExtendedPageTableFormat()
        // bits 20:12 = 0x101 are reserved in a 2 MiB leaf; bits 29:12 in a 1 GiB leaf
        #expect(format.outputAddress(ofLeaf: 0x0000_0000_4030_1A81, atLevel: 1) == HostPhysicalAddress(0x4020_0000))
        #expect(format.outputAddress(ofLeaf: 0x0000_0000_7FFF_FA81, atLevel: 2) == HostPhysicalAddress(0x4000_0000))
    }

    @Test(arguments: [(UInt64(0x917), UInt8(2)), (0x81F, 3), (0x83F, 7)])
    func reservedMemoryTypesDecodeAsReserved(entry: UInt64, field: UInt8) throws {
        // 0x917: MT bits 5:3 = 0b010; 0x81F: 0b011; 0x83F: 0b111
        let format = try ExtendedPageTableFormat()
        #expect(format.attributes(ofLeaf: entry, atLevel: 0).memoryType == .reserved(field))
    }

    @Test(arguments: [(UInt64(0x800), MemoryType.uncached), (0x808, .writeCombining), (0x820, .writeThrough),
                      (0x828, .writeProtected), (0x830, .writeBack)])
    func namedMemoryTypesDecode(entry: UInt64, type: MemoryType) throws {
        let format = try ExtendedPageTableFormat()
        #expect(format.attributes(ofLeaf: entry, atLevel: 0).memoryType == type)
    }

    @Test func softwareBitsDecodeFromBits52To62() throws {
        let format = try ExtendedPageTableFormat()
        // bits 52, 57, 58 → software bits 0, 5, 6 = 0x61
        #expect(format.attributes(ofLeaf: 0x0610_0000_0000_0807, atLevel: 0).softwareBits == 0x61)
        // bit 63 (suppress #VE) is not a software bit
        #expect(format.attributes(ofLeaf: 0x8000_0000_0000_0807, atLevel: 0).softwareBits == 0)
    }

    @Test func bit2GivesBothExecuteRightsWithoutMBEC() throws {
        let format = try ExtendedPageTableFormat()
        #expect(format.permissions(ofLeaf: 0x804) == .execute)
        // bit 10 means nothing without MBEC
        #expect(format.permissions(ofLeaf: 0xC01) == .read)
    }

    @Test func bits2And10AreSupervisorAndUserExecuteWithMBEC() throws {
        let format = try ExtendedPageTableFormat(modeBasedExecute: true)
        #expect(format.permissions(ofLeaf: 0x804) == .executePrivileged)
        #expect(format.permissions(ofLeaf: 0xC01) == [.read, .executeUser])
        #expect(format.permissions(ofLeaf: 0xC07) == .all)
    }
}
