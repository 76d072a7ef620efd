import Testing
import SLATCore
import SLATx86
import SLATArm64

/// The reserved-bit queries the image reader relies on, checked against the
/// formats' own encoders: nothing SLAT writes is reported, and the bits the
/// manuals reserve are.
@Suite("Format reserved-bit queries")
struct FormatReservedBitsTests {
    static let permissionSets: [Permissions] = [[], .read, .readWrite, .readExecute, .all]

    @Test("EPT leaves and table entries SLAT encodes have no reserved bits and are not misconfigured", arguments: [4, 5])
    func eptEncodedEntriesAreClean(levels: Int) throws {
        let format = try ExtendedPageTableFormat(levelCount: levels, outputAddressBits: 46)
        for level in 0...2 {
            let output = HostPhysicalAddress(format.entrySize(atLevel: level) * 3)
            for permissions in Self.permissionSets {
                for type in [MemoryType.writeBack, .uncached, .writeCombining, .writeThrough, .writeProtected] {
                    let entry = format.leafEntry(output: output, attributes: LeafAttributes(permissions: permissions, memoryType: type), atLevel: level)
                    #expect(format.reservedBits(inEntry: entry, atLevel: level) == 0)
                    #expect(!format.isMisconfigured(entry, atLevel: level))
                }
            }
        }
        let table = format.tableEntry(child: HostPhysicalAddress(0x3FFF_FFFF_F000))
        for level in 1...format.rootLevel {
            #expect(format.reservedBits(inEntry: table, atLevel: level) == 0)
        }
    }

    @Test("EPT reserves address bits above MAXPHYADDR, low bits of large pages and bits 7:3 of table entries")
    func eptReservedBits() throws {
        let format = try ExtendedPageTableFormat(levelCount: 4, outputAddressBits: 40)
        let page = format.leafEntry(output: HostPhysicalAddress(0x1000), attributes: LeafAttributes(permissions: .readWrite), atLevel: 0)
        #expect(format.reservedBits(inEntry: page | 1 << 40, atLevel: 0) == 1 << 40)
        let huge = format.leafEntry(output: HostPhysicalAddress(1 << 30), attributes: LeafAttributes(permissions: .readWrite), atLevel: 2)
        #expect(format.reservedBits(inEntry: huge | 1 << 21, atLevel: 2) == 1 << 21)
        let table = format.tableEntry(child: HostPhysicalAddress(0x5000))
        #expect(format.reservedBits(inEntry: table | 0x30, atLevel: 1) == 0x30)
        #expect(format.isMisconfigured(table | 1 << 7, atLevel: 3))
        #expect(format.isMisconfigured(page & ~ExtendedPageTableBits.read, atLevel: 0))
        #expect(format.isMisconfigured(page & ~ExtendedPageTableBits.memoryType | 7 << 3, atLevel: 0))
    }

    @Test("Stage-2 descriptors SLAT encodes have no RES0 bits set", arguments: TranslationGranuleCases.all)
    func stageTwoEncodedEntriesAreClean(granule: TranslationGranule) throws {
        for split in [false, true] {
            let format = try StageTwoFormat(granule: granule, inputAddressBits: 40, outputAddressBits: 48, executeNeverSplit: split)
            for level in 0...format.rootLevel where format.canHoldLeaf(atLevel: level) {
                for permissions in Self.permissionSets {
                    let entry = format.leafEntry(
                        output: HostPhysicalAddress(format.entrySize(atLevel: level) * 5),
                        attributes: LeafAttributes(permissions: permissions, memoryType: .device), atLevel: level)
                    #expect(format.reservedBits(inEntry: entry, atLevel: level) == 0)
                }
            }
            let table = format.tableEntry(child: HostPhysicalAddress(UInt64(granule.byteCount) * 7))
            for level in 1...format.rootLevel {
                #expect(format.reservedBits(inEntry: table, atLevel: level) == 0)
            }
        }
    }

    @Test("Stage 2 reserves bits 50:48, bits 63:59 of table descriptors and bit 53 without FEAT_XNX")
    func stageTwoReservedBits() throws {
        let format = try StageTwoFormat(granule: .size64KiB, inputAddressBits: 42, outputAddressBits: 48)
        let table = format.tableEntry(child: HostPhysicalAddress(0x10_0000))
        #expect(format.reservedBits(inEntry: table | 1 << 60, atLevel: 1) == 1 << 60)
        #expect(format.reservedBits(inEntry: table | 1 << 13, atLevel: 1) == 1 << 13)   // below the 64K granule
        let page = format.leafEntry(output: HostPhysicalAddress(0x10_0000), attributes: LeafAttributes(permissions: .all), atLevel: 0)
        #expect(format.reservedBits(inEntry: page | 1 << 49, atLevel: 0) == 1 << 49)
        #expect(format.reservedBits(inEntry: page | 1 << 53, atLevel: 0) == 1 << 53)
        let block = format.leafEntry(output: HostPhysicalAddress(512 << 20), attributes: LeafAttributes(permissions: .all), atLevel: 1)
        #expect(format.reservedBits(inEntry: block | 1 << 20, atLevel: 1) == 1 << 20)
    }
}

enum TranslationGranuleCases {
    static let all: [TranslationGranule] = [.size4KiB, .size16KiB, .size64KiB]
}
