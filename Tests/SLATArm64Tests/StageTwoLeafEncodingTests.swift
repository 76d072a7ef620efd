import SLATArm64
import SLATCore
import Testing

/// Descriptors compared with values worked out by hand from the Arm ARM layout.
@Suite("Stage-2 leaf and table encoding")
struct StageTwoLeafEncodingTests {
    @Test func readWriteWriteBackPageIsExecuteNever() throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40, outputAddressBits: 48)
        // valid|page 0x3 + MemAttr 0xF << 2 = 0x3C + S2AP 0xC0 + SH 0x300 + AF 0x400 = 0x7FF; XN bit 54
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0x8000_1000),
            attributes: LeafAttributes(permissions: .readWrite, memoryType: .writeBack), atLevel: 0)
        #expect(entry == 0x0040_0000_8000_17FF)
    }

    @Test func readExecuteDevice2MiBBlockHasBit1Clear() throws {
        let format = try StageTwoFormat()
        // valid 0x1 + MemAttr 0x1 << 2 = 0x4 + S2AP R 0x40 + SH 0x300 + AF 0x400 = 0x745; XN 0
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0x4020_0000),
            attributes: LeafAttributes(permissions: .readExecute, memoryType: .device), atLevel: 1)
        #expect(entry == 0x0000_0000_4020_0745)
    }

    @Test func inaccessibleUncached1GiBBlockAtTopOf48BitsWithAllSoftwareBits() throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 48, outputAddressBits: 48)
        // valid 0x1 + Device-nGnRnE 0 + SH 0x300 = 0x301; XN 0x0040…; software 0xF << 55 = 0x0780…
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0x0000_FFFF_C000_0000),
            attributes: LeafAttributes(permissions: [], memoryType: .uncached, accessed: false, softwareBits: 0xF),
            atLevel: 2)
        #expect(entry == 0x07C0_FFFF_C000_0301)
    }

    @Test func userOnlyExecuteWithXNXIsPrivilegedExecuteNever() throws {
        let format = try StageTwoFormat(executeNeverSplit: true)
        // 0x3 + WT 0xA << 2 = 0x28 + R 0x40 + SH 0x300 + AF 0x400 = 0x76B; XN[1:0] = 0b01 → bit 53
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0x1000),
            attributes: LeafAttributes(permissions: [.read, .executeUser], memoryType: .writeThrough), atLevel: 0)
        #expect(entry == 0x0020_0000_0000_176B)
    }

    @Test func privilegedOnlyExecuteWithXNXIsUserExecuteNever() throws {
        let format = try StageTwoFormat(executeNeverSplit: true)
        // 0x3 + NC 0x5 << 2 = 0x14 + R 0x40 + SH 0x300 + AF 0x400 = 0x757; XN[1:0] = 0b11 → bits 54:53
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0x2000),
            attributes: LeafAttributes(permissions: [.read, .executePrivileged], memoryType: .writeCombining),
            atLevel: 0)
        #expect(entry == 0x0060_0000_0000_2757)
    }

    @Test func noExecuteWithXNXIsExecuteNeverEverywhere() throws {
        let format = try StageTwoFormat(executeNeverSplit: true)
        // XN[1:0] = 0b10 → bit 54, as without FEAT_XNX
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0x2000), attributes: LeafAttributes(permissions: .readWrite), atLevel: 0)
        #expect(entry == 0x0040_0000_0000_27FF)
    }

    @Test func sixteenKiBReadWriteExecutePage() throws {
        let format = try StageTwoFormat(granule: .size16KiB, inputAddressBits: 48, outputAddressBits: 48)
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0x4000), attributes: LeafAttributes(permissions: .all), atLevel: 0)
        #expect(entry == 0x0000_0000_0000_47FF)
    }

    @Test func sixtyFourKiBPageWith52BitAddressPutsBits51To48InBits15To12() throws {
        let format = try StageTwoFormat(granule: .size64KiB, inputAddressBits: 52, outputAddressBits: 52)
        // address 0x000F_0000_0001_0000: bits 47:16 in place (0x1_0000), bits 51:48 = 0xF → 0xF000
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0x000F_0000_0001_0000),
            attributes: LeafAttributes(permissions: .readWrite), atLevel: 0)
        #expect(entry == 0x0040_0000_0001_F7FF)
    }

    @Test func sixtyFourKiB512MiBBlockWith52BitAddress() throws {
        let format = try StageTwoFormat(granule: .size64KiB, inputAddressBits: 52, outputAddressBits: 52)
        // address 0x000A_0000_2000_0000 → in place 0x2000_0000, 0xA → bits 15:12; RWX block 0x7FD
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0x000A_0000_2000_0000),
            attributes: LeafAttributes(permissions: .all), atLevel: 1)
        #expect(entry == 0x0000_0000_2000_A7FD)
    }

    @Test func tableDescriptorIsValidTableAndAddressOnly() throws {
        let format = try StageTwoFormat()
        #expect(format.tableEntry(child: HostPhysicalAddress(0x8765_4000)) == 0x0000_0000_8765_4003)
        #expect(format.childTable(of: 0x0000_0000_8765_4003) == HostPhysicalAddress(0x8765_4000))
    }

    @Test func sixtyFourKiBTableDescriptorWith52BitAddress() throws {
        let format = try StageTwoFormat(granule: .size64KiB, inputAddressBits: 52, outputAddressBits: 52)
        #expect(format.tableEntry(child: HostPhysicalAddress(0x0003_0000_0005_0000)) == 0x0000_0000_0005_3003)
        #expect(format.childTable(of: 0x0000_0000_0005_3003) == HostPhysicalAddress(0x0003_0000_0005_0000))
    }

    @Test func childTableIgnoresAttributeBitsAndBitsBelowTheGranule() throws {
        let format = try StageTwoFormat(granule: .size16KiB, inputAddressBits: 48, outputAddressBits: 48)
        #expect(format.childTable(of: 0xFFFF_FFFF_FFFF_FFFF) == HostPhysicalAddress(0x0000_FFFF_FFFF_C000))
    }

    @Test func frozenEntryIsTheInvalidLockedMarker() throws {
        #expect(try StageTwoFormat().frozenEntry == 0x400)
    }
}
