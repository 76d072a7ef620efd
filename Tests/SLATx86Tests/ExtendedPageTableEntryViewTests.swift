import SLATCore
import SLATx86
import Testing

@Suite("EPT entry view")
struct ExtendedPageTableEntryViewTests {
    @Test func everyFieldReadsFromAHandWrittenEntry() {
        // 0xF7F0_0000_1234_5FFF: suppress #VE, software 0x77F (bits 62:52), address 0x1234_5000,
        // and bits 11:0 all set (R W X, MT 7, IPAT, PS, A, D, user-exec, MMU present)
        let entry = ExtendedPageTableEntry(rawValue: 0xF7F0_0000_1234_5FFF)
        #expect(entry.isReadable && entry.isWritable && entry.isExecutable)
        #expect(entry.memoryTypeField == 7)
        #expect(entry.memoryType == .reserved(7))
        #expect(entry.ignorePAT && entry.isLargePage && entry.isAccessed && entry.isDirty)
        #expect(entry.isUserExecutable && entry.isMMUPresent)
        #expect(entry.address == HostPhysicalAddress(0x1234_5000))
        #expect(entry.softwareBits == 0x77F)
        #expect(entry.isHostWritable && entry.isMMUWritable)
        #expect(entry.suppressVE)
    }

    @Test func emptyEntryHasEveryFieldClear() {
        let entry = ExtendedPageTableEntry(rawValue: 0)
        #expect(!entry.isReadable && !entry.isWritable && !entry.isExecutable && !entry.isUserExecutable)
        #expect(entry.memoryType == .uncached && !entry.ignorePAT && !entry.isLargePage)
        #expect(!entry.isAccessed && !entry.isDirty && !entry.isMMUPresent && !entry.suppressVE)
        #expect(entry.address == HostPhysicalAddress(0) && entry.softwareBits == 0)
    }

    @Test func eachSetterWritesItsOwnBits() {
        func written(_ change: (inout ExtendedPageTableEntry) -> Void) -> UInt64 {
            var entry = ExtendedPageTableEntry(rawValue: 0)
            change(&entry)
            return entry.rawValue
        }
        #expect(written { $0.isReadable = true } == 0x1)
        #expect(written { $0.isWritable = true } == 0x2)
        #expect(written { $0.isExecutable = true } == 0x4)
        #expect(written { $0.memoryTypeField = 6 } == 0x30)
        #expect(written { $0.ignorePAT = true } == 0x40)
        #expect(written { $0.isLargePage = true } == 0x80)
        #expect(written { $0.isAccessed = true } == 0x100)
        #expect(written { $0.isDirty = true } == 0x200)
        #expect(written { $0.isUserExecutable = true } == 0x400)
        #expect(written { $0.isMMUPresent = true } == 0x800)
        #expect(written { $0.address = HostPhysicalAddress(0xFFFF_FFFF_FFFF_FFFF) } == 0x000F_FFFF_FFFF_F000)
        #expect(written { $0.softwareBits = 0xFFFF } == 0x7FF0_0000_0000_0000)
        #expect(written { $0.isHostWritable = true } == 0x0200_0000_0000_0000)
        #expect(written { $0.isMMUWritable = true } == 0x0400_0000_0000_0000)
        #expect(written { $0.suppressVE = true } == 0x8000_0000_0000_0000)
    }

    @Test func clearingAFieldLeavesTheOthers() {
        var entry = ExtendedPageTableEntry(rawValue: UInt64.max)
        entry.isWritable = false
        entry.memoryTypeField = 0
        entry.softwareBits = 0
        #expect(entry.rawValue == 0x800F_FFFF_FFFF_FFC5)
    }
}
