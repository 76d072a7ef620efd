import SLATCore
import SLATx86
import Testing

/// Leaves compared with entries worked out by hand from the SDM's layout.
@Suite("EPT leaf encoding")
struct ExtendedPageTableLeafEncodingTests {
    @Test func readWriteExecuteWriteBack4KiBLeaf() throws {
        let format = try ExtendedPageTableFormat()
        // R|W|X = 0x7, WB 6 << 3 = 0x30, accessed 0x100, MMU present 0x800 → 0x937
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0x1234_5000),
            attributes: LeafAttributes(permissions: .all, memoryType: .writeBack, accessed: true),
            atLevel: 0)
        #expect(entry == 0x0000_0000_1234_5937)
    }

    @Test func readOnlyUncachedDirty2MiBLeafSetsPageSize() throws {
        let format = try ExtendedPageTableFormat()
        // R 0x1, UC 0, page size 0x80, dirty 0x200, MMU present 0x800 → 0xA81
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0x4020_0000),
            attributes: LeafAttributes(permissions: .read, memoryType: .uncached, accessed: false, dirty: true),
            atLevel: 1)
        #expect(entry == 0x0000_0000_4020_0A81)
    }

    @Test func writeThrough1GiBLeafAtTopOfOutputSpaceWithAllSoftwareBits() throws {
        let format = try ExtendedPageTableFormat()
        // RW 0x3 + WT 4 << 3 = 0x20 + PS 0x80 + A 0x100 + D 0x200 + 0x800 = 0xBA3;
        // software 0x7FF << 52 = 0x7FF0_0000_0000_0000; address 0x000F_FFFF_C000_0000
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0x000F_FFFF_C000_0000),
            attributes: LeafAttributes(
                permissions: .readWrite, memoryType: .writeThrough, accessed: true, dirty: true, softwareBits: 0x7FF),
            atLevel: 2)
        #expect(entry == 0x7FFF_FFFF_C000_0BA3)
    }

    @Test func userExecuteOnlyWithMBECSetsBit10NotBit2() throws {
        let format = try ExtendedPageTableFormat(modeBasedExecute: true)
        // R 0x1 + WC 1 << 3 = 0x8 + A 0x100 + user-exec 0x400 + 0x800 = 0xD09
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0x1000),
            attributes: LeafAttributes(permissions: [.read, .executeUser], memoryType: .writeCombining),
            atLevel: 0)
        #expect(entry == 0x0000_0000_0000_1D09)
    }

    @Test func ignoreGuestPATSetsBit6() throws {
        let format = try ExtendedPageTableFormat(ignoreGuestPAT: true)
        // RW 0x3 + WP 5 << 3 = 0x28 + IPAT 0x40 + A 0x100 + 0x800 = 0x96B
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0x0ABC_D000),
            attributes: LeafAttributes(permissions: .readWrite, memoryType: .writeProtected),
            atLevel: 0)
        #expect(entry == 0x0000_0000_0ABC_D96B)
    }

    @Test func kvmWritableSoftwareBitsLandInBits57And58() throws {
        let format = try ExtendedPageTableFormat()
        // software bits 5 and 6 = 0x60 → bits 57 and 58 = 0x0600_0000_0000_0000; R 0x1 + WB 0x30 + 0x800
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0),
            attributes: LeafAttributes(permissions: .read, accessed: false, softwareBits: 0x60),
            atLevel: 0)
        #expect(entry == 0x0600_0000_0000_0831)
        #expect(entry & ExtendedPageTableBits.hostWritable != 0)
        #expect(entry & ExtendedPageTableBits.mmuWritable != 0)
    }

    @Test func leafWithoutPermissionsKeepsOnlyTheMMUPresentBitForPresence() throws {
        let format = try ExtendedPageTableFormat()
        // UC 0, not accessed: only MMU present 0x800 and the address
        let entry = format.leafEntry(
            output: HostPhysicalAddress(0x5000),
            attributes: LeafAttributes(permissions: [], memoryType: .uncached, accessed: false),
            atLevel: 0)
        #expect(entry == 0x0000_0000_0000_5800)
        #expect(format.isPresent(entry, atLevel: 0))
    }

    @Test func tableEntryIsReadWriteExecutePlusMMUPresentPlusAddress() throws {
        let format = try ExtendedPageTableFormat()
        #expect(format.tableEntry(child: HostPhysicalAddress(0x7654_3000)) == 0x0000_0000_7654_3807)
        #expect(format.tableEntry(child: HostPhysicalAddress(0x000F_FFFF_FFFF_F000)) == 0x000F_FFFF_FFFF_F807)
    }

    @Test func childTableReadsBits51To12() throws {
        let format = try ExtendedPageTableFormat()
        #expect(format.childTable(of: 0x8000_0000_7654_3907) == HostPhysicalAddress(0x7654_3000))
        #expect(format.childTable(of: 0xFFFF_FFFF_FFFF_FFFF) == HostPhysicalAddress(0x000F_FFFF_FFFF_F000))
    }

    @Test(arguments: [0, 1, 2, 3, 4])
    func tableEntryRoundTripsThroughChildTableAtEveryHeight(level: Int) throws {
        let format = try ExtendedPageTableFormat(levelCount: 5)
        let child = HostPhysicalAddress(0x0001_2345_6789_A000)
        let entry = format.tableEntry(child: child)
        #expect(format.childTable(of: entry) == child)
        if level > 0 { #expect(format.isTable(entry, atLevel: level)) }
    }
}
