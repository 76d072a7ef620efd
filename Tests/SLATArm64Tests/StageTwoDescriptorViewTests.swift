import SLATArm64
import SLATCore
import Testing

@Suite("Stage-2 descriptor view")
struct StageTwoDescriptorViewTests {
    @Test func everyFieldReadsFromAHandWrittenDescriptor() throws {
        // software 0xF (0x0780…), XN 0b11 (0x0060…), contiguous (0x0010…), DBM (0x0008…),
        // address 0x8000_1000, and 0x7FF: valid, page, MemAttr 0xF, S2AP RW, SH 3, AF
        let descriptor = StageTwoDescriptor(rawValue: 0x07F8_0000_8000_17FF)
        #expect(descriptor.isValid && descriptor.isTableOrPage)
        #expect(descriptor.memoryAttributesField == 0xF && descriptor.memoryType == .writeBack)
        #expect(descriptor.isReadable && descriptor.isWritable)
        #expect(descriptor.shareability == 3 && descriptor.isAccessed)
        #expect(descriptor.dirtyBitModifier && descriptor.isContiguous)
        #expect(descriptor.executeNeverField == 0b11)
        #expect(descriptor.softwareBits == 0xF)
        #expect(descriptor.address(in: try StageTwoFormat()) == HostPhysicalAddress(0x8000_1000))
    }

    @Test func emptyDescriptorHasEveryFieldClear() throws {
        let descriptor = StageTwoDescriptor(rawValue: 0)
        #expect(!descriptor.isValid && !descriptor.isTableOrPage && descriptor.memoryType == .uncached)
        #expect(!descriptor.isReadable && !descriptor.isWritable && descriptor.shareability == 0)
        #expect(!descriptor.isAccessed && !descriptor.dirtyBitModifier && !descriptor.isContiguous)
        #expect(descriptor.executeNeverField == 0 && descriptor.softwareBits == 0)
    }

    @Test func eachSetterWritesItsOwnBits() throws {
        func written(_ change: (inout StageTwoDescriptor) -> Void) -> UInt64 {
            var descriptor = StageTwoDescriptor(rawValue: 0)
            change(&descriptor)
            return descriptor.rawValue
        }
        #expect(written { $0.isValid = true } == 0x1)
        #expect(written { $0.isTableOrPage = true } == 0x2)
        #expect(written { $0.memoryAttributesField = 0xFF } == 0x3C)
        #expect(written { $0.isReadable = true } == 0x40)
        #expect(written { $0.isWritable = true } == 0x80)
        #expect(written { $0.shareability = 3 } == 0x300)
        #expect(written { $0.isAccessed = true } == 0x400)
        #expect(written { $0.dirtyBitModifier = true } == 0x0008_0000_0000_0000)
        #expect(written { $0.isContiguous = true } == 0x0010_0000_0000_0000)
        #expect(written { $0.executeNeverField = 0b10 } == 0x0040_0000_0000_0000)
        #expect(written { $0.softwareBits = 0xFFFF } == 0x0780_0000_0000_0000)
        let format = try StageTwoFormat(granule: .size64KiB, inputAddressBits: 52, outputAddressBits: 52)
        #expect(written { $0.setAddress(HostPhysicalAddress(0x000F_0000_0001_0000), in: format) } == 0x0001_F000)
    }

    @Test func settingTheAddressKeepsTheOtherFields() throws {
        let format = try StageTwoFormat()
        var descriptor = StageTwoDescriptor(rawValue: 0x07F8_0000_8000_17FF)
        descriptor.setAddress(HostPhysicalAddress(0x0000_1234_5678_9000), in: format)
        #expect(descriptor.rawValue == 0x07F8_1234_5678_97FF)
    }
}
